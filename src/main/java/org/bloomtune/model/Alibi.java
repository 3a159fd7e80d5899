package org.bloomtune.model;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * ALiBi: instead of position embeddings, each head adds {@code slope_h · key_position} to its
 * attention scores. Softmax is shift-invariant per query row, so a bias on the key axis alone is
 * equivalent to the paper's {@code -slope·|i - j|}.
 */
public final class Alibi {
    private Alibi() {}

    /**
     * Per-head slopes: {@code 2^(-8k/n)} for k = 1..n with n the largest power of two ≤ heads; for
     * other head counts the odd-indexed slopes of 2n fill up the rest (as in BLOOM and the paper).
     */
    public static float[] slopes(int numHeads) {
        int closestPow2 = Integer.highestOneBit(numHeads);
        double base = Math.pow(2, -8.0 / closestPow2);
        float[] slopes = new float[numHeads];
        for (int k = 0; k < closestPow2; k++) slopes[k] = (float) Math.pow(base, k + 1);
        double extraBase = Math.pow(2, -8.0 / (2 * closestPow2));
        for (int k = closestPow2, power = 1; k < numHeads; k++, power += 2) {
            slopes[k] = (float) Math.pow(extraBase, power);
        }
        return slopes;
    }

    /**
     * The bias for every key: {@code [B * heads, 1, S]}, row {@code b * heads + h}. Key positions
     * are {@code (cumsum(mask) - 1) · mask}, so padding does not count: a left-padded row sees the
     * same positions as its unpadded sequence. (A packed row's positions: {@link PackedMask#positions}.)
     *
     * @param attentionMask [B, S], 1 for real tokens and 0 for padding (any numeric dtype)
     */
    public static Tensor bias(Tensor attentionMask, int numHeads, ScalarType dtype) {
        return fromPositions(positions(attentionMask), numHeads, dtype);
    }

    /** Key positions {@code (cumsum(mask) - 1) · mask} [B, S] in float32. */
    static Tensor positions(Tensor attentionMask) {
        // Integer arithmetic as HF does it, so padded keys get +0 rather than -0.
        Tensor mask = attentionMask.to(ScalarType.Long);
        return mask.cumsum(-1).sub(new Scalar(1)).mul(mask).to(ScalarType.Float);
    }

    /** The bias {@code [B * heads, 1, S]} for key positions [B, S] (float32). */
    static Tensor fromPositions(Tensor positions, int numHeads, ScalarType dtype) {
        long batch = positions.size(0);
        long keys = positions.size(1);
        Tensor slopes = Tensors.fromFloats(slopes(numHeads), numHeads, 1).to(positions.device(), ScalarType.Float);
        Tensor alibi = slopes.mul(positions.unsqueeze(1));                               // [B, heads, S]
        return alibi.reshape(batch * numHeads, 1, keys).to(dtype);
    }
}
