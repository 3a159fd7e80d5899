package org.bloomtune.model;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** The boolean mask every block applies: causal, plus padding from the 2-D attention mask. */
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
}
