package org.bloomtune.io;

import org.bloomtune.tensor.DType;

import org.bytedeco.pytorch.Tensor;

import java.util.Set;

/**
 * Named tensors of a checkpoint, whatever the file format. A tensor from {@link #get} may alias the
 * source's storage (a memory mapping), so the source stays open as long as such tensors live.
 */
public interface WeightSource extends AutoCloseable {

    /** Where the weights come from, for error messages. */
    String description();

    Set<String> names();

    long[] shape(String name);

    /** The stored dtype of {@code name}. */
    DType dtype(String name);

    /** The tensor called {@code name}; the caller owns the handle, the source owns the bytes. */
    Tensor get(String name);

    /**
     * Says the bytes of {@code name} will not be read again (the loader copied or quantized them),
     * so a mapped source can drop its pages from this process's resident memory. No tensor that
     * aliases them may be in use.
     */
    default void release(String name) {}

    /** True when tensors from {@link #get} alias memory that {@link #close} releases. */
    boolean aliasesStorage();

    @Override
    void close();
}
