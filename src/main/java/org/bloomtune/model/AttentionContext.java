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
 */
public record AttentionContext(AttentionKernel kernel, Tensor alibi, Tensor mask, Tensor bias) {}
