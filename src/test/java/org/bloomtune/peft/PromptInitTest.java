package org.bloomtune.peft;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PEFT's three prompt initialisations, seeded and reproducible. */
class PromptInitTest {
    static final Path HF_A = Reference.reference("hf/a");

    @Test
    void textInitRepeatsTheIdsCyclicallyAsPeftDid() {
        Map<String, Tensor> g = Reference.read(HF_A.resolve("goldens.safetensors"));
        // "Hi!" tokenized to [260, 37]; PEFT repeated it to [260, 37, 260, 37, 260].
        long[] tokenizerIds = Tensors.toLongs(g.get("pt_text.tokenizer_ids"));
        try (BloomModel model = BloomModel.load(HF_A.resolve("model"));
             SoftPrompt p = SoftPrompt.fromTokens(model, tokenizerIds, 5)) {
            assertArrayEquals(Tensors.toFloats(g.get("pt_text.prompt_weight")), Tensors.toFloats(p.weight()));
            try (SoftPrompt cut = SoftPrompt.fromTokens(model, new long[]{7, 8, 9}, 2)) {
                assertArrayEquals(Tensors.toFloats(embeddingRows(model, 7, 8)), Tensors.toFloats(cut.weight()));
            }
        }
    }

    @Test
    void sampleVocabTakesRowsOfTheEmbeddingReproducibly() {
        try (BloomModel model = BloomModel.load(HF_A.resolve("model"));
             SoftPrompt a = SoftPrompt.sampleVocab(model, 4, 11);
             SoftPrompt b = SoftPrompt.sampleVocab(model, 4, 11);
             SoftPrompt c = SoftPrompt.sampleVocab(model, 4, 12)) {
            assertArrayEquals(Tensors.toFloats(a.weight()), Tensors.toFloats(b.weight()));
            assertNotEquals(java.util.Arrays.toString(Tensors.toFloats(a.weight())), java.util.Arrays.toString(Tensors.toFloats(c.weight())));
            float[] all = Tensors.toFloats(embeddingRows(model, java.util.stream.LongStream.range(0, 1024).toArray()));
            float[] rows = Tensors.toFloats(a.weight());
            for (int r = 0; r < 4; r++) assertTrue(isRowOf(rows, r, all, 64), "row " + r + " is not a vocabulary embedding");
        }
    }

    @Test
    void randomInitIsStandardNormalAndSeeded() {
        try (SoftPrompt a = SoftPrompt.random(100, 200, 5); SoftPrompt b = SoftPrompt.random(100, 200, 5)) {
            float[] v = Tensors.toFloats(a.weight());
            assertArrayEquals(v, Tensors.toFloats(b.weight()));
            double mean = 0, sq = 0;
            for (float x : v) { mean += x; sq += x * x; }
            mean /= v.length;
            double std = Math.sqrt(sq / v.length - mean * mean);
            assertEquals(0, mean, 0.02);      // 20000 draws: standard error 0.007
            assertEquals(1, std, 0.02);
            assertTrue(a.weight().requires_grad());
        }
    }

    private static Tensor embeddingRows(BloomModel model, long... ids) {
        return model.embed(Tensors.fromLongs(ids, 1, ids.length)).squeeze(0);
    }

    private static boolean isRowOf(float[] rows, int r, float[] table, int width) {
        for (int t = 0; t < table.length / width; t++) {
            boolean same = true;
            for (int i = 0; i < width && same; i++) same = rows[r * width + i] == table[t * width + i];
            if (same) return true;
        }
        return false;
    }
}
