package org.bloomtune.kernels;

import java.util.stream.IntStream;

/** Runs a native kernel over a matrix's rows in parallel: {@code parts} contiguous ranges, one task each. */
final class RowSplit {
    /** One range of rows given to the kernel (a block lambda: a signature-polymorphic invokeExact must be a statement to return void). */
    @FunctionalInterface
    interface Range {
        void run(long from, long count) throws Throwable;
    }

    private RowSplit() {}

    /** Splits rows [0, rows) into {@code parts} near-equal ranges and runs them in parallel; {@code kernel} names the C function in errors. */
    static void run(String kernel, long rows, int parts, Range range) {
        IntStream.range(0, parts).parallel().forEach(p -> {
            long from = rows * p / parts;
            long count = rows * (p + 1) / parts - from;
            if (count == 0) return;
            try {
                range.run(from, count);
            } catch (Throwable t) {
                throw new IllegalStateException("FFM call to " + kernel + " failed", t);
            }
        });
    }
}
