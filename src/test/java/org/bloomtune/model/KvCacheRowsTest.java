package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A continuous batch's cache surgery: rows prefilled apart and joined (the shorter padded on the
 * left, masked), rows dropped, padding trimmed — every row's next-token logits stay those of the
 * row decoded alone (≤ 1e-5).
 */
class KvCacheRowsTest {
    static final long[] A = {5, 17, 3, 88, 41, 9, 23};
    static final long[] B = {64, 2, 71};

    @Test
    void joinedDroppedAndTrimmedRowsDecodeAsAlone() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf").resolve("a/model"))) {
            int heads = model.config().numHeads();
            float[][] alone = {decodeAlone(model, A, 4), decodeAlone(model, B, 4)};
            try (KvCache batch = new KvCache(model.config().numLayers()); KvCache b = new KvCache(model.config().numLayers())) {
                Tensor first = model.nextTokenLogits(CausalLmInput.ids(Tensors.fromLongs(A, 1, A.length)), batch);
                Tensor second = model.nextTokenLogits(CausalLmInput.ids(Tensors.fromLongs(B, 1, B.length)), b);
                long[] pad = batch.appendRows(b);
                assertEquals(0, pad[0]);
                assertEquals(A.length - B.length, pad[1]);
                assertEquals(0, b.length());
                long[] mask = new long[2 * A.length];
                for (int t = 0; t < A.length; t++) mask[t] = 1;
                for (int t = (int) pad[1]; t < A.length; t++) mask[A.length + t] = 1;
                Tensor m = Tensors.fromLongs(mask, 2, A.length);
                long[] next = {argmax(Tensors.toFloats(first)), argmax(Tensors.toFloats(second))};
                for (int step = 0; step < 3; step++) {
                    m = torch.cat(new TensorVector(m, torch.ones(2, 1).to(m.scalar_type())), 1);
                    float[] logits = Tensors.toFloats(model.nextTokenLogits(CausalLmInput.ids(Tensors.fromLongs(next, 2, 1)).mask(m), batch));
                    int vocab = logits.length / 2;
                    for (int r = 0; r < 2; r++) {
                        float[] row = java.util.Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab);
                        float[] expected = java.util.Arrays.copyOfRange(alone[r], step * vocab, (step + 1) * vocab);
                        assertTrue(maxDiff(row, expected) <= 1e-5, "row " + r + " step " + step + ": " + maxDiff(row, expected));
                        next[r] = argmax(row);
                    }
                }
                // Row A leaves; B's leading padding goes with it.
                batch.keepRows(new long[]{1}, heads);
                m = m.narrow(0, 1, 1);
                batch.dropFront(pad[1]);
                m = m.narrow(1, pad[1], m.size(1) - pad[1]).contiguous();
                m = torch.cat(new TensorVector(m, torch.ones(1, 1).to(m.scalar_type())), 1);
                float[] last = Tensors.toFloats(model.nextTokenLogits(CausalLmInput.ids(Tensors.fromLongs(new long[]{next[1]}, 1, 1)).mask(m), batch));
                int vocab = last.length;
                float[] expected = java.util.Arrays.copyOfRange(alone[1], 3 * vocab, 4 * vocab);
                assertTrue(maxDiff(last, expected) <= 1e-5, "B alone after A left: " + maxDiff(last, expected));
                assertThrows(IllegalArgumentException.class, () -> batch.keepRows(new long[]{1}, heads));
            }
        }
    }

    /** Greedy steps 1..n of {@code prompt} alone: the logits that chose tokens 2..n+1, concatenated. */
    private static float[] decodeAlone(BloomModel model, long[] prompt, int steps) {
        try (KvCache cache = new KvCache(model.config().numLayers())) {
            long next = argmax(Tensors.toFloats(model.nextTokenLogits(CausalLmInput.ids(Tensors.fromLongs(prompt, 1, prompt.length)), cache)));
            float[][] out = new float[steps][];
            for (int s = 0; s < steps; s++) {
                out[s] = Tensors.toFloats(model.nextTokenLogits(CausalLmInput.ids(Tensors.fromLongs(new long[]{next}, 1, 1)), cache));
                next = argmax(out[s]);
            }
            float[] all = new float[steps * out[0].length];
            for (int s = 0; s < steps; s++) System.arraycopy(out[s], 0, all, s * out[0].length, out[0].length);
            return all;
        }
    }

    private static long argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
