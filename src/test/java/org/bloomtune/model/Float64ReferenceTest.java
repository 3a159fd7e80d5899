package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Against the independent float64 implementation (ref-a: keys with the {@code transformer.} prefix,
 * and the same weights as a {@code pytorch_model.bin} with an explicit lm_head; ref-b: no prefix,
 * 6 heads), right-padded (in0) and left-padded (in1) batches; plus hf/a's {@code pytorch_model.bin}.
 */
class Float64ReferenceTest {

    @ParameterizedTest
    @CsvSource({"ref-a,model,0", "ref-a,model,1", "ref-a,model-bin,0", "ref-a,model-bin,1",
            "ref-b,model,0", "ref-b,model,1"})
    void logitsAndLossMatch(String set, String modelDir, int input) {
        Path root = Reference.reference(set);
        Map<String, Tensor> in = Reference.read(root.resolve("in" + input + ".safetensors"));
        Map<String, Tensor> expect = Reference.read(root.resolve("expect" + input + ".safetensors"));
        try (BloomModel model = BloomModel.load(root.resolve(modelDir));
             CausalLmOutput out = model.forward(CausalLmInput.ids(in.get("input_ids"))
                     .mask(in.get("attention_mask")).labels(in.get("labels")))) {
            double err = Reference.maxAbsDiff(out.logits(), expect.get("logits"));
            assertTrue(err <= 1e-4, set + "/" + modelDir + " in" + input + ": logits max-abs error " + err);
            double lossErr = Math.abs(Tensors.toFloat(out.loss()) - Tensors.toFloat(expect.get("loss")));
            assertTrue(lossErr <= 1e-5, "loss error " + lossErr);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"lp", "rp"})
    void hfPytorchModelBinMatchesHfLogits(String pad) {
        Path root = Reference.reference("hf/a");
        Map<String, Tensor> g = Reference.read(root.resolve("goldens.safetensors"));
        try (BloomModel model = BloomModel.load(root.resolve("model-bin"));
             CausalLmOutput out = model.forward(CausalLmInput.ids(g.get("inputs." + pad + ".input_ids"))
                     .mask(g.get("inputs." + pad + ".attention_mask")).labels(g.get("inputs." + pad + ".labels")))) {
            double err = Reference.maxAbsDiff(out.logits(), g.get("base." + pad + ".logits"));
            assertTrue(err <= 1e-4, "hf/a pytorch_model.bin " + pad + ": logits max-abs error " + err);
            double lossErr = Math.abs(Tensors.toFloat(out.loss()) - Tensors.toFloat(g.get("base." + pad + ".loss")));
            assertTrue(lossErr <= 1e-5, "loss error " + lossErr);
        }
    }
}
