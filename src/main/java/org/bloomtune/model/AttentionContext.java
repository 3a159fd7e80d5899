package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * What every block's attention shares in one forward call.
 *
 * @param alibi [B * heads, 1, S] ALiBi bias on the key axis, in the compute dtype
 * @param mask  [B, 1, T, S] true where a score is masked (future or padding key)
 * @param bias  [B, heads, T, S] ALiBi plus the dtype's lowest value where masked, for the fused
 *              kernel; null when attention runs eagerly
 */
public record AttentionContext(Tensor alibi, Tensor mask, Tensor bias) {
    public AttentionContext(Tensor alibi, Tensor mask) { this(alibi, mask, null); }
}
