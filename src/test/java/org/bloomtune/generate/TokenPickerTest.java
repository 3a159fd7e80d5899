package org.bloomtune.generate;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

class TokenPickerTest {

    @Test
    void argmaxTakesTheFirstMaximumAsTorchDoes() {
        assertEquals(1, TokenPicker.argmax(new float[]{0, 3, 1, 3}));
        assertEquals(2, TokenPicker.argmax(new float[]{0, 3, Float.NaN, 9, Float.NaN}), "torch.argmax counts a NaN as the largest");
        assertEquals(0, TokenPicker.argmax(new float[]{Float.NaN, 3}));
        assertEquals(0, TokenPicker.argmax(new float[]{Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}));
    }

    @Test
    void topKAndTopPKeepTheExpectedTokens() {
        double[] p = {0.1, 0.5, 0.3, 0.1};
        TokenPicker.keepTopK(p, 2);
        assertArrayEquals(new double[]{0, 0.5, 0.3, 0}, p);
        double[] q = {0.15, 0.5, 0.05, 0.3};
        TokenPicker.keepTopP(q, 0.7);   // 0.5 + 0.3 reaches 0.7: the two smallest go
        assertArrayEquals(new double[]{0, 0.5, 0, 0.3}, q);
        double[] r = {0.9, 0.1};
        TokenPicker.keepTopP(r, 0.01);  // at least one token always survives
        assertArrayEquals(new double[]{0.9, 0}, r);
    }

    /** Quickselect and the nonzero-only sort against the definitions by full sorts, ties and zeros included. */
    @Test
    void topKAndTopPEqualTheirSortingDefinitions() {
        java.util.Random random = new java.util.Random(9);
        for (int trial = 0; trial < 300; trial++) {
            int vocab = 1 + random.nextInt(trial < 200 ? 40 : 5000);
            double[] probs = new double[vocab];
            for (int i = 0; i < vocab; i++) {
                // Coarse values make ties common; some tokens are already zero (as after top-k).
                probs[i] = random.nextInt(4) == 0 ? 0 : (1 + random.nextInt(trial % 2 == 0 ? 5 : 1000)) / 8.0;
            }
            int k = 1 + random.nextInt(vocab + 1);
            double p = random.nextDouble();
            double[] topK = probs.clone();
            TokenPicker.keepTopK(topK, k);
            assertArrayEquals(topKBySorting(probs, k), topK, "top-k " + k + " of " + java.util.Arrays.toString(probs));
            double[] topP = probs.clone();
            TokenPicker.keepTopP(topP, p);
            assertArrayEquals(topPBySorting(probs, p), topP, "top-p " + p + " of " + java.util.Arrays.toString(probs));
        }
    }

    private static double[] topKBySorting(double[] probs, int k) {
        double[] out = probs.clone();
        if (k >= probs.length) return out;
        double[] sorted = probs.clone();
        java.util.Arrays.sort(sorted);
        for (int i = 0; i < out.length; i++) if (out[i] < sorted[sorted.length - k]) out[i] = 0;
        return out;
    }

    /** All ids in descending probability (stable: lower ids first among ties), kept until the mass reaches p. */
    private static double[] topPBySorting(double[] probs, double p) {
        double[] out = probs.clone();
        Integer[] order = new Integer[probs.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Double.compare(probs[b], probs[a]));
        double total = 0;
        for (double v : probs) total += v;
        double mass = 0;
        int kept = 0;
        while (kept < order.length && (kept == 0 || mass < p * total)) mass += probs[order[kept++]];
        for (int i = kept; i < order.length; i++) out[order[i]] = 0;
        return out;
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        GenerationConfig config = GenerationConfig.greedy(1, -1).withRepetitionPenalty(2.0);
        float[] logits = {2, -2, 1.5f};
        long picked = new TokenPicker(config).pick(logits, Set.of(0L, 1L));
        assertArrayEquals(new float[]{1, -4, 1.5f}, logits);
        assertEquals(2, picked);
    }

    @Test
    void samplingFollowsTheSoftmaxDistribution() {
        float[] logits = {1.0f, 2.0f, 0.0f, -1.0f};
        double[] expected = TokenPicker.softmax(logits, 1.0);
        TokenPicker picker = new TokenPicker(GenerationConfig.sampling(1, 1.0, 0, 1.0, -1, 7));
        int draws = 40_000;
        int[] counts = new int[logits.length];
        for (int i = 0; i < draws; i++) counts[(int) picker.pick(logits.clone(), Set.of())]++;
        for (int i = 0; i < logits.length; i++) {
            assertEquals(expected[i], counts[i] / (double) draws, 0.01, "token " + i);
        }
    }

    @Test
    void temperatureSharpensTheDistribution() {
        float[] logits = {1.0f, 2.0f};
        assertEquals(1 / (1 + Math.exp(-1)), TokenPicker.softmax(logits, 1.0)[1], 1e-12);
        assertEquals(1 / (1 + Math.exp(-2)), TokenPicker.softmax(logits, 0.5)[1], 1e-12);
    }

    @Test
    void seededSamplingRepeatsTopKOneIsGreedyAndEosStops() {
        try (BloomModel model = BloomModel.load(Reference.reference("ref-a").resolve("model"))) {
            Generator g = new Generator(model);
            List<long[]> prompt = List.of(new long[]{49, 584, 613, 796, 223});
            long[] greedy = g.generate(prompt, GenerationConfig.greedy(6, -1), TokenListener.NONE).row(0);
            long[] topOne = g.generate(prompt, GenerationConfig.sampling(6, 0.7, 1, 1.0, -1, 5), TokenListener.NONE).row(0);
            assertArrayEquals(greedy, topOne);
            GenerationConfig hot = GenerationConfig.sampling(12, 5.0, 0, 1.0, -1, 11);
            long[] first = g.generate(prompt, hot, TokenListener.NONE).row(0);
            assertArrayEquals(first, g.generate(prompt, hot, TokenListener.NONE).row(0));
            assertNotEquals(java.util.Arrays.toString(first), java.util.Arrays.toString(greedy));
            long[] stopped = g.generate(prompt, GenerationConfig.greedy(6, greedy[1]), TokenListener.NONE).row(0);
            assertArrayEquals(new long[]{greedy[0], greedy[1]}, stopped);
        }
    }
}
