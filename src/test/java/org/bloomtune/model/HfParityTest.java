package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Logits, losses and ALiBi against what HuggingFace transformers' own code produced (hf/a, hf/b). */
class HfParityTest {
    static final Map<String, BloomModel> models = new HashMap<>();
    static final Map<String, Map<String, Tensor>> goldens = new HashMap<>();

    @BeforeAll
    static void load() {
        for (String set : new String[]{"a", "b"}) {
            Path dir = Reference.reference("hf").resolve(set);
            models.put(set, BloomModel.load(dir.resolve("model")));
            goldens.put(set, Reference.read(dir.resolve("goldens.safetensors")));
        }
    }

    @AfterAll
    static void close() {
        models.values().forEach(BloomModel::close);
        goldens.values().forEach(g -> g.values().forEach(Tensor::close));
    }

    @ParameterizedTest
    @ValueSource(strings = {"a/lp", "a/rp", "b/lp", "b/rp"})
    void logitsAndLossMatchAtAllPositions(String c) {
        String set = c.substring(0, 1);
        String pad = c.substring(2);
        Map<String, Tensor> g = goldens.get(set);
        CausalLmInput in = CausalLmInput.ids(g.get("inputs." + pad + ".input_ids"))
                .mask(g.get("inputs." + pad + ".attention_mask"))
                .labels(g.get("inputs." + pad + ".labels"));
        try (CausalLmOutput out = models.get(set).forward(in)) {
            double err = Reference.maxAbsDiff(out.logits(), g.get("base." + pad + ".logits"));
            assertTrue(err <= 1e-4, c + " logits max-abs error " + err);
            double lossErr = Math.abs(Tensors.toFloat(out.loss()) - Tensors.toFloat(g.get("base." + pad + ".loss")));
            assertTrue(lossErr <= 1e-5, c + " loss error " + lossErr);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"a", "b"})
    void unpaddedSingleRowMatches(String set) {
        Map<String, Tensor> g = goldens.get(set);
        try (CausalLmOutput out = models.get(set).forward(CausalLmInput.ids(g.get("inputs.single.input_ids")))) {
            double err = Reference.maxAbsDiff(out.logits(), g.get("base.single.logits"));
            assertTrue(err <= 1e-4, "single logits max-abs error " + err);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"a/lp", "a/rp", "b/lp", "b/rp"})
    void alibiTensorAndSlopesEqual(String c) {
        String set = c.substring(0, 1);
        String pad = c.substring(2);
        Map<String, Tensor> g = goldens.get(set);
        int heads = models.get(set).config().numHeads();
        assertArrayEquals(Tensors.toFloats(g.get("alibi.slopes")), Alibi.slopes(heads));
        try (Tensor alibi = Alibi.bias(g.get("inputs." + pad + ".attention_mask"), heads,
                org.bytedeco.pytorch.global.torch.ScalarType.Float)) {
            assertArrayEquals(Tensors.shape(g.get("base." + pad + ".alibi")), Tensors.shape(alibi));
            assertArrayEquals(Tensors.toFloats(g.get("base." + pad + ".alibi")), Tensors.toFloats(alibi));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"a/lp", "a/rp", "b/lp"})
    void causalMaskEqualsHfFourDimensionalMask(String c) {
        Map<String, Tensor> g = goldens.get(c.substring(0, 1));
        String pad = c.substring(2);
        Tensor mask2d = g.get("inputs." + pad + ".attention_mask");
        try (Tensor mask = AttentionMask.build(mask2d, mask2d.size(1))) {
            assertArrayEquals(Tensors.toLongs(g.get("base." + pad + ".causal_mask_4d")), Tensors.toLongs(mask));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"a", "b"})
    void slopesForNonPowerOfTwoHeads(String set) {
        // b has 6 heads: the 4 power-of-two slopes, then 0.5 and 0.125 from the 8-head series.
        float[] expected = set.equals("a") ? new float[]{0.25f, 0.0625f, 0.015625f, 0.00390625f}
                : new float[]{0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
        assertArrayEquals(expected, Alibi.slopes(models.get(set).config().numHeads()));
        assertEquals(expected.length, models.get(set).config().numHeads());
    }
}
