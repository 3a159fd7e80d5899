package org.bloomtune.model;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The attention context of a step with one new position per row, computed from the 2-D mask's
 * values in Java: the ALiBi bias of {@link Alibi#bias}, the mask of {@link AttentionMask#build} (the
 * new position is the last key, so only padding is masked) and, where the model uses one, the
 * additive bias of {@link AttentionMask#additive} (built here in float32, by libtorch from the other
 * two otherwise) — the same numbers from two or three tensors instead of some twenty small libtorch
 * calls, each a dispatch that a decode step pays for every token. Key positions are integers and
 * each bias is one float32 product, as libtorch computes it; libtorch rounds it to the compute dtype.
 */
final class DecodeContext {
    private DecodeContext() {}

    /**
     * The context for the mask's values {@code mask} [B, S] (row-major); null when a value is not 0
     * or 1 (a packed row: {@link PackedMask}), the caller then building it op by op.
     *
     * @param additive whether to build the additive bias (float32 and float64 models: see {@link AttentionMask#additiveIsExact})
     */
    static AttentionContext of(long[] mask, long batch, long keys, int heads, ScalarType dtype, AttentionKernel kernel, boolean additive) {
        float[] slopes = Alibi.slopes(heads);
        float[] alibi = new float[Math.toIntExact(batch * heads * keys)];
        boolean[] masked = new boolean[mask.length];
        for (int b = 0; b < batch; b++) {
            long seen = 0;
            for (int j = 0; j < keys; j++) {
                long m = mask[(int) (b * keys + j)];
                if (m != 0 && m != 1) return null;
                seen += m;
                float position = (seen - 1) * m;          // HF's (cumsum − 1) · mask: padding at +0
                masked[(int) (b * keys + j)] = m == 0;
                for (int h = 0; h < heads; h++) alibi[(int) ((b * heads + h) * keys + j)] = slopes[h] * position;
            }
        }
        boolean float32 = dtype.value == ScalarType.Float.value;
        Tensor bias = Tensors.fromFloats(alibi, batch * heads, 1, keys);
        if (!float32) bias = bias.to(dtype);
        Tensor hidden = Tensors.fromBooleans(masked, batch, 1, 1, keys);
        Tensor sum = !additive ? null : float32 ? additive(alibi, masked, batch, heads, keys) : AttentionMask.additive(bias, hidden, heads);
        return new AttentionContext(kernel, bias, hidden, sum, null);
    }

    /** ALiBi and the mask as one float32 bias [B, heads, 1, S]: float32's lowest value where masked. */
    private static Tensor additive(float[] alibi, boolean[] masked, long batch, int heads, long keys) {
        float[] bias = alibi.clone();
        for (int i = 0; i < bias.length; i++) if (masked[(int) (i / (heads * keys) * keys + i % keys)]) bias[i] = (float) BloomAttention.FLOAT32_MIN;
        return Tensors.fromFloats(bias, batch, heads, 1, keys);
    }
}
