package org.bloomtune.model;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The attention context of a step with one new position per row, computed from the 2-D mask's
 * values in Java: the ALiBi bias of {@link Alibi#bias} and the mask of {@link AttentionMask#build}
 * (the new position is the last key, so only padding is masked) — the same numbers from two
 * tensors instead of some twenty small libtorch calls, each a dispatch that a decode step pays for
 * every token. Key positions are integers and each bias is one float32 product, as libtorch
 * computes it; libtorch rounds it to the compute dtype. The additive bias of
 * {@link AttentionMask#additive} is left out: the native decode step does not read it, and a
 * step that runs its blocks one by one adds it ({@code BloomModel}).
 */
final class DecodeContext {
    private DecodeContext() {}

    /**
     * The context for the mask's values {@code mask} [B, S] (row-major), without the additive bias;
     * null when a value is not 0 or 1 (a packed row: {@link PackedMask}), the caller then building it
     * op by op.
     */
    static AttentionContext of(long[] mask, long batch, long keys, int heads, ScalarType dtype, AttentionKernel kernel) {
        float[] positions = positions(mask, batch, keys);
        if (positions == null) return null;
        boolean[] masked = new boolean[mask.length];
        for (int i = 0; i < mask.length; i++) masked[i] = mask[i] == 0;
        Tensor bias = Tensors.fromFloats(bias(positions, batch, keys, Alibi.slopes(heads)), batch * heads, 1, keys);
        if (dtype.value != ScalarType.Float.value) bias = bias.to(dtype);
        return new AttentionContext(kernel, bias, Tensors.fromBooleans(masked, batch, 1, 1, keys), null, null);
    }

    /**
     * The ALiBi bias [B · heads, S] in float32 for the keys' {@link #positions} [B, S]: each head's
     * slope times the position, one float32 product as libtorch computes it.
     */
    static float[] bias(float[] positions, long batch, long keys, float[] slopes) {
        int heads = slopes.length;
        float[] alibi = new float[Math.toIntExact(batch * heads * keys)];
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < keys; j++) {
                for (int h = 0; h < heads; h++) alibi[(int) ((b * heads + h) * keys + j)] = slopes[h] * positions[(int) (b * keys + j)];
            }
        }
        return alibi;
    }

    /**
     * Each key's ALiBi position under the mask's values {@code mask} [B, S] (row-major): HF's
     * (cumsum − 1) · mask, padding at +0 — what a head's slope multiplies; null when a value is not
     * 0 or 1.
     */
    static float[] positions(long[] mask, long batch, long keys) {
        float[] positions = new float[mask.length];
        for (int b = 0; b < batch; b++) {
            long seen = 0;
            for (int j = 0; j < keys; j++) {
                long m = mask[(int) (b * keys + j)];
                if (m != 0 && m != 1) return null;
                seen += m;
                positions[(int) (b * keys + j)] = (seen - 1) * m;
            }
        }
        return positions;
    }
}
