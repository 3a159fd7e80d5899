package org.bloomtune.kernels;

import java.lang.foreign.MemorySegment;

/**
 * A native gather of a matrix's rows: {@code count} int64 ids, each already checked to lie in the
 * matrix, and where their rows go, one after another in the rows' dtype. A word embedding's
 * lookup for callers that keep a decode step's input in native memory of their own.
 */
@FunctionalInterface
public interface RowGather {
    void rows(MemorySegment ids, long count, MemorySegment out) throws Throwable;
}
