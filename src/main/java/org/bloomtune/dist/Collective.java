package org.bloomtune.dist;

import org.bytedeco.pytorch.Tensor;

/**
 * The collectives data-parallel training needs, as the trainer sees them: sum a tensor over all
 * ranks in place, copy one rank's tensor to all, wait for all. {@link #SINGLE} is the world of one
 * process, where each is a no-op.
 */
public interface Collective extends AutoCloseable {
    Collective SINGLE = new Collective() {
        @Override public int rank() { return 0; }
        @Override public int worldSize() { return 1; }
        @Override public void allReduceSum(Tensor t, String what) {}
        @Override public void allReduceMax(Tensor t, String what) {}
        @Override public void broadcast(Tensor t, int root, String what) {}
        @Override public void barrier(String what) {}
        @Override public void close() {}
    };

    int rank();

    int worldSize();

    default boolean isLeader() { return rank() == 0; }

    /** Replaces {@code t} (a CPU float tensor, the same shape on every rank) by its sum over ranks; {@code what} names it in errors. */
    void allReduceSum(Tensor t, String what);

    /** Replaces {@code t} by its element-wise maximum over ranks. */
    void allReduceMax(Tensor t, String what);

    /** Replaces {@code t} on every rank by rank {@code root}'s. */
    void broadcast(Tensor t, int root, String what);

    void barrier(String what);

    @Override
    void close();
}
