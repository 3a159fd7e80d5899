package org.bloomtune.model;

import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.LlmInt8Panels;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The word embedding of an inference-only int8 model, kept in its lm_head's panels, looks rows up as
 * the row-major {@link Int8WordEmbedding} does — libtorch's gather, casts and product — bit for bit,
 * in every panel layout (weight-only and LLM.int8 panels) and both compute dtypes; ids outside the
 * vocabulary are refused before a row is read.
 */
class PanelInt8WordEmbeddingTest {

    @Test
    void looksRowsUpAsTheRowMajorEmbeddingDoes() {
        List<Int8Panels> layouts = new ArrayList<>();
        if (Int8Bf16Panels.supported()) layouts.addAll(List.of(Int8Panels.WEIGHT_ONLY_BF16, Int8Panels.WEIGHT_ONLY_F32));
        if (LlmInt8Panels.supported()) layouts.addAll(List.of(Int8Panels.llmInt8(6.0, ScalarType.Float), Int8Panels.llmInt8(6.0, ScalarType.BFloat16)));
        Random r = new Random(17);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            int vocab = 96, hidden = 1000;
            // Rows of very different magnitude, so scales span many binades and bfloat16's rounding of them shows.
            float[] w = Int8LinearTest.random(r, vocab * hidden, 0.05f);
            for (int row = 0; row < vocab; row++) for (int c = 0; c < hidden; c++) w[row * hidden + c] *= (float) Math.pow(2, row % 13 - 6);
            Int8Weight weight = Int8Weight.quantize(Tensors.fromFloats(w, vocab, hidden));
            Tensor ids = Tensors.fromLongs(new long[]{0, 95, 31, 32, 63, 64, 7, 7}, 2, 4);
            for (Int8Panels layout : layouts) {
                PanelInt8WordEmbedding panels = new PanelInt8WordEmbedding(weight, layout);
                Int8WordEmbedding rowMajor = new Int8WordEmbedding(weight, (x, wt, b) -> { throw new AssertionError("no product"); }, layout.dtype());
                Tensor ours = panels.lookup(ids), theirs = rowMajor.lookup(ids);
                assertTrue(ours.scalar_type().value == layout.dtype().value, layout.dtype() + ": rows come in another dtype");
                assertTrue(torch.equal(ours, theirs), layout.dtype() + ": rows from the panels differ from the row-major lookup");
                Tensor outside = Tensors.fromLongs(new long[]{3, 96}, 1, 2);
                assertThrows(IllegalArgumentException.class, () -> panels.lookup(outside), "an id past the vocabulary");
                Tensor negative = Tensors.fromLongs(new long[]{-1}, 1, 1);
                assertThrows(IllegalArgumentException.class, () -> panels.lookup(negative), "a negative id");
            }
        }
    }
}
