package org.bloomtune.kernels;

/**
 * Runs a native kernel over a matrix's rows in parallel: {@code parts} contiguous ranges, the
 * first on the calling thread and the others on {@link KernelThreads}' helpers.
 */
final class RowSplit {
    /** One range of rows given to the kernel (a block lambda: a signature-polymorphic invokeExact must be a statement to return void). */
    @FunctionalInterface
    interface Range {
        void run(long from, long count) throws Throwable;
    }

    private RowSplit() {}

    /** Splits rows [0, rows) into {@code parts} near-equal ranges and runs them in parallel; {@code kernel} names the C function in errors. */
    static void run(String kernel, long rows, int parts, Range range) {
        KernelThreads.Part[] handed = new KernelThreads.Part[parts];
        for (int p = 1; p < parts; p++) {
            KernelThreads.Part part = new KernelThreads.Part(range, from(rows, parts, p), from(rows, parts, p + 1) - from(rows, parts, p));
            if (KernelThreads.offer(p - 1, part)) handed[p] = part;
        }
        Throwable error = null;
        for (int p = 0; p < parts; p++) {
            if (handed[p] != null) continue;
            KernelThreads.Part part = new KernelThreads.Part(range, from(rows, parts, p), from(rows, parts, p + 1) - from(rows, parts, p));
            part.run();
            error = first(error, part.await());
        }
        for (KernelThreads.Part part : handed) if (part != null) error = first(error, part.await());
        if (error != null) throw new IllegalStateException("FFM call to " + kernel + " failed", error);
    }

    private static long from(long rows, int parts, int p) { return rows * p / parts; }

    private static Throwable first(Throwable seen, Throwable next) { return seen != null ? seen : next; }
}
