package org.bloomtune.peft;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.AttentionKernel;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Soft prompts against PEFT's own results (hf/*: RANDOM and TEXT adapters, left and right padding)
 * and the float64 reference (ref-*): logits at all positions, loss, and the prompt gradient by
 * both reverse passes, which must also agree with each other.
 */
class PromptTuningParityTest {

    @ParameterizedTest
    @CsvSource({"a,random,lp", "a,random,rp", "a,text,lp", "a,text,rp", "b,random,lp", "b,random,rp", "b,text,lp", "b,text,rp"})
    void matchesPeft(String set, String adapter, String pad) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        String p = "pt_" + adapter + "." + pad + ".";
        try (BloomModel model = BloomModel.load(dir.resolve("model"));
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapters").resolve(adapter), model.config())) {
            assertTrue(Reference.maxAbsDiff(a.prompt().weight(), g.get("pt_" + adapter + ".prompt_weight")) == 0);
            Tensor ids = g.get("inputs." + pad + ".input_ids");
            Tensor mask = g.get("inputs." + pad + ".attention_mask");
            Tensor labels = g.get("inputs." + pad + ".labels");
            check(model, a.prompt(), ids, mask, labels, g.get(p + "logits"), g.get(p + "loss"), g.get(p + "prompt_grad"));
        }
    }

    /** libtorch's fused attention with the folded ALiBi/mask bias gives PEFT's numbers too, padding included. */
    @ParameterizedTest
    @CsvSource({"a,random,lp", "a,text,rp", "b,random,lp", "b,text,rp"})
    void fusedAttentionMatchesPeft(String set, String adapter, String pad) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        String p = "pt_" + adapter + "." + pad + ".";
        try (BloomModel model = BloomModel.load(dir.resolve("model"), LoadOptions.defaults().withAttention(AttentionKernel.SDPA));
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapters").resolve(adapter), model.config())) {
            check(model, a.prompt(), g.get("inputs." + pad + ".input_ids"), g.get("inputs." + pad + ".attention_mask"),
                    g.get("inputs." + pad + ".labels"), g.get(p + "logits"), g.get(p + "loss"), g.get(p + "prompt_grad"));
        }
    }

    @ParameterizedTest
    @CsvSource({"ref-a", "ref-b"})
    void matchesFloat64Reference(String set) {
        Path dir = Reference.reference(set);
        Map<String, Tensor> in = Reference.read(dir.resolve("in1.safetensors"));
        Map<String, Tensor> e = Reference.read(dir.resolve("expect_prompt.safetensors"));
        try (BloomModel model = BloomModel.load(dir.resolve("model"));
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapter"), model.config())) {
            check(model, a.prompt(), in.get("input_ids"), in.get("attention_mask"), in.get("labels"),
                    e.get("logits"), e.get("loss"), e.get("prompt_grad"));
        }
    }

    static void check(BloomModel model, SoftPrompt prompt, Tensor ids, Tensor mask, Tensor labels,
                      Tensor expectedLogits, Tensor expectedLoss, Tensor expectedGrad) {
        try (PointerScope scope = new PointerScope()) {
            CausalLmInput input = PromptedInput.of(model, prompt, ids, mask, labels);
            try (GradMode off = GradMode.off(); CausalLmOutput out = model.forward(input)) {
                double err = Reference.maxAbsDiff(out.logits(), expectedLogits);
                assertTrue(err <= 1e-4, "logits max-abs error " + err);
                assertEquals(Tensors.toFloat(expectedLoss), Tensors.toFloat(out.loss()), 1e-5, "loss");
            }
            float[][] grads = new float[2][];
            for (ReversePass pass : new ReversePass[]{ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS}) {
                prompt.zeroGrad();
                float loss = PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, mask, labels), pass);
                assertEquals(Tensors.toFloat(expectedLoss), loss, 1e-5, pass + " loss");
                double scale = Reference.maxAbs(expectedGrad);
                double err = Reference.maxAbsDiff(prompt.grad(), expectedGrad) / scale;
                assertTrue(err <= 1e-4, pass + ": prompt_grad relative error " + err);
                grads[pass.ordinal()] = Tensors.toFloats(prompt.grad());
            }
            double scale = 0, diff = 0;
            for (int i = 0; i < grads[0].length; i++) {
                scale = Math.max(scale, Math.abs(grads[0][i]));
                diff = Math.max(diff, Math.abs(grads[0][i] - grads[1][i]));
            }
            assertTrue(diff / scale <= 1e-6, "path 1 vs path 2 relative difference " + diff / scale);
        }
    }
}
