package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * What every block's attention shares in one forward call.
 *
 * @param kernel how scores become the attended values
 * @param alibi  [B * heads, 1, S] ALiBi bias on the key axis, in the compute dtype
 * @param mask   [B, 1, T, S] true where a score is masked (future or padding key)
 * @param bias   [B, heads, T, S] ALiBi plus the dtype's lowest value where masked, built once for
 *               all blocks (see {@link AttentionMask#additive}); null where the eager kernel masks
 *               each block's scores itself
 * @param prefix prefix tuning's keys and values, put ahead of this call's in every layer; null
 *               without one (or when they are already in the KV cache)
 */
public record AttentionContext(AttentionKernel kernel, Tensor alibi, Tensor mask, Tensor bias, AttentionPrefix prefix) {

    /** The same context with {@code other} as the prefix (the reverse pass swaps in a recording leaf). */
    public AttentionContext withPrefix(AttentionPrefix other) { return new AttentionContext(kernel, alibi, mask, bias, other); }

    /** The same context with {@code additive} as the bias. */
    AttentionContext withBias(Tensor additive) { return new AttentionContext(kernel, alibi, mask, additive, prefix); }
}
