package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** int8 models on the reference checkpoints: memory, logits against fp32, and the prompt gradient through int8 layers. */
class Int8ModelTest {

    @ParameterizedTest
    @CsvSource({"a,WEIGHT_ONLY", "a,LLM_INT8", "a,DEQUANTIZE", "b,WEIGHT_ONLY", "b,LLM_INT8", "b,DEQUANTIZE"})
    void logitsCloseToFp32AndWeightsUnderThirtyPercent(String set, Int8Mode mode) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        try (BloomModel fp32 = BloomModel.load(dir.resolve("model"));
             BloomModel int8 = BloomModel.load(dir.resolve("model"), LoadOptions.defaults().withInt8(Int8Options.of(mode)));
             PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            double ratio = (double) int8.residentWeightBytes() / fp32.residentWeightBytes();
            CausalLmInput in = CausalLmInput.ids(Reference.randomIds(4, 32, fp32.config().vocabSize(), 9));
            try (CausalLmOutput a = fp32.forward(in); CausalLmOutput b = int8.forward(in)) {
                double err = Reference.maxAbsDiff(a.logits(), b.logits());
                double agree = top1Agreement(a.logits(), b.logits());
                System.out.printf("hf/%s %s: weights %d vs %d bytes (%.3f), logits max-abs %.4f (scale %.2f), top-1 agreement %.3f%n",
                        set, mode, int8.residentWeightBytes(), fp32.residentWeightBytes(), ratio, err, Reference.maxAbs(a.logits()), agree);
                assertTrue(ratio <= 0.3, "int8 weights are " + ratio + " of fp32");
                assertTrue(err <= 0.1 * Reference.maxAbs(a.logits()), "logits error " + err);
                // Random tiny models have close logits (init range 0.2): most, not all, argmaxes survive.
                assertTrue(agree >= 0.75, "top-1 agreement " + agree);
            }
        }
    }

    @ParameterizedTest
    // LLM.int8 quantizes activations too, so the forward it backpropagates through is not quite the
    // dequantized model's. At HF's init scale (bloom-tiny, std 0.02) that costs ~3e-4; hf/b was drawn
    // with std 0.2, whose large activations move LLM.int8's forward by several percent (6e-2 measured).
    @CsvSource({"hf/b/model,WEIGHT_ONLY,1e-2", "hf/b/model,LLM_INT8,1e-1", "tiny,WEIGHT_ONLY,1e-2", "tiny,LLM_INT8,1e-2"})
    void promptGradientThroughInt8MatchesTheDequantizedModel(String model, Int8Mode mode, double tolerance) {
        Path dir = model.equals("tiny") ? Path.of("models/bloom-tiny") : Reference.reference(model);
        try (BloomModel dequantized = BloomModel.load(dir, LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.DEQUANTIZE)));
             BloomModel int8 = BloomModel.load(dir, LoadOptions.defaults().withInt8(Int8Options.of(mode)));
             org.bloomtune.peft.SoftPrompt prompt = org.bloomtune.peft.SoftPrompt.random(5, int8.config().hiddenSize(), 4);
             PointerScope scope = new PointerScope()) {
            Tensor ids = Reference.randomIds(3, 24, int8.config().vocabSize(), 2);
            PromptBackward.lossAndGrad(dequantized, PromptedInput.of(dequantized, prompt, ids, null, ids), ReversePass.AUTOGRAD);
            float[] expected = Tensors.toFloats(prompt.grad());
            for (ReversePass pass : new ReversePass[]{ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS}) {
                prompt.zeroGrad();
                PromptBackward.lossAndGrad(int8, PromptedInput.of(int8, prompt, ids, null, ids), pass);
                float[] got = Tensors.toFloats(prompt.grad());
                double err = Reference.relativeMaxDiff(expected, got);
                System.out.printf("%s %s %s: prompt_grad relative error vs dequantized fp32 model %.2e%n", model, mode, pass, err);
                assertTrue(err <= tolerance, mode + " " + pass + ": relative error " + err);
            }
        }
    }

    static double top1Agreement(Tensor a, Tensor b) {
        long[] x = Tensors.toLongs(a.argmax(new org.bytedeco.pytorch.LongOptional(-1), false));
        long[] y = Tensors.toLongs(b.argmax(new org.bytedeco.pytorch.LongOptional(-1), false));
        int same = 0;
        for (int i = 0; i < x.length; i++) if (x[i] == y[i]) same++;
        return (double) same / x.length;
    }
}
