package org.bloomtune.model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The boolean mask every block applies: causal, plus padding from the 2-D attention mask (a packed
 * row adds {@link PackedMask#otherRecords}).
 */
public final class AttentionMask {
    private AttentionMask() {}

    /**
     * {@code [B, 1, T, S]}, true where a score is masked: key {@code j} is hidden from query
     * {@code i} when it lies in the future ({@code j > past + i}) or is padding.
     *
     * @param attentionMask [B, S] with S = past + T
     * @param queries       T, the number of new positions
     */
    public static Tensor build(Tensor attentionMask, long queries) {
        long batch = attentionMask.size(0);
        long keys = attentionMask.size(1);
        long past = keys - queries;
        TensorOptions bool = new TensorOptions(ScalarType.Bool).device(
                new org.bytedeco.pytorch.DeviceOptional(attentionMask.device()));
        Tensor future = torch.ones(new long[]{queries, keys}, bool).triu(past + 1);   // [T, S]
        Tensor padding = attentionMask.eq(new Scalar(0)).view(batch, 1, 1, keys);     // [B, 1, 1, S]
        return future.view(1, 1, queries, keys).logical_or(padding);                  // [B, 1, T, S]
    }

    /**
     * Whether adding the additive bias to the scores gives exactly HF's eager result (ALiBi added,
     * masked scores replaced by float32's lowest value): in float32 and float64 a score plus the
     * lowest value rounds back to the lowest value, so masked scores match bit for bit and the
     * eager kernel can skip its per-block masked_fill. In half precision the sum can overflow to
     * −inf, so HF's order (mask after the float32 cast) is kept there.
     */
    public static boolean additiveIsExact(ScalarType compute) {
        return compute.value == ScalarType.Float.value || compute.value == ScalarType.Double.value;
    }

    /**
     * ALiBi and the mask as one additive bias {@code [B, heads, T, S]}, for the fused kernel and the
     * float32 eager one:
     * masked scores get the dtype's lowest finite value, as HF's eager path gives them (so a row
     * with every key masked — a left-padding query — becomes uniform, not NaN).
     *
     * @param alibi  [B * heads, 1, S]
     * @param masked [B, 1, T, S] boolean
     */
    public static Tensor additive(Tensor alibi, Tensor masked, int numHeads) {
        long batch = masked.size(0);
        long queries = masked.size(2);
        long keys = masked.size(3);
        double lowest = alibi.scalar_type().value == ScalarType.BFloat16.value ? -3.3895313892515355e38
                : alibi.scalar_type().value == ScalarType.Half.value ? -65504.0
                : alibi.scalar_type().value == ScalarType.Double.value ? -Double.MAX_VALUE : BloomAttention.FLOAT32_MIN;
        return alibi.view(batch, numHeads, 1, keys).expand(batch, numHeads, queries, keys)
                .masked_fill(masked, new Scalar(lowest)).contiguous();
    }
}
