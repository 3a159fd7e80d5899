package org.bloomtune.model;

import org.bloomtune.kernels.RowGather;
import org.bloomtune.kernels.RowKernel;
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
     * The native row kernel {@link #logits(Tensor, RowsArgmax.Picks)} calls for {@code x2d} [rows, H]
     * as the lm_head, or null where it calls none (as {@link Linear#rowKernel}): what a native decode
     * step calls to go on to the argmax itself.
     */
    default RowKernel rowKernel(Tensor x2d) { return null; }

    /**
     * {@link #lookup}'s rows written where a caller says, in the compute dtype, for a greedy loop that
     * keeps each step's input in native memory of its own ({@link GreedySteps}); null where the
     * lookup has no such form. The caller checks every id against the vocabulary first.
     */
    default RowGather rowGather() { return null; }

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
