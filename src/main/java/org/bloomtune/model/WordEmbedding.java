package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * BLOOM's word embedding [V, H], which also serves as the (tied) lm_head: ids → vectors on the way
 * in, hidden states → logits on the way out.
 */
public interface WordEmbedding extends AutoCloseable {

    /** {@code ids} [B, T] int64 → [B, T, H] in the compute dtype. */
    Tensor lookup(Tensor ids);

    /** {@code hidden} [..., H] → logits [..., V]. */
    Tensor logits(Tensor hidden);

    /**
     * The backward of {@link #logits} with respect to its input, without autograd: {@code
     * gradLogits} [K, V] → d loss / d hidden [K, H] = gradLogits · W, in the compute dtype.
     */
    Tensor inputGrad(Tensor gradLogits);

    long residentBytes();

    @Override
    void close();
}
