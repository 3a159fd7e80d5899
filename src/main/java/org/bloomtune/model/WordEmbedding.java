package org.bloomtune.model;

import org.bloomtune.kernels.RowsArgmax;
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
     * {@code hidden} [rows, H] → logits [rows, V], each row's argmax merged into {@code picks}: by
     * the threads of the product as they write the logits where its kernel takes it, afterwards
     * from the whole logits otherwise.
     */
    default Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        Tensor logits = logits(hidden);
        picks.mergeAll(logits);
        return logits;
    }

    /**
     * Vocabulary rows {@code [start, start + n)} of the matrix as [n, H] in the compute dtype — a
     * view of a floating-point matrix, a dequantized copy of an int8 one — for heads that stream
     * the vocabulary a block at a time instead of forming [K, V] logits.
     */
    Tensor rows(long start, long n);

    /** Whether {@link #rows} returns a view (no memory of its own) rather than a copy. */
    boolean rowsAreViews();

    long residentBytes();

    @Override
    void close();
}
