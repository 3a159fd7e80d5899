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

    /** Rows of a weight a thread takes at least: fewer cost more to hand over than to read. */
    static final long MIN_WEIGHT_ROWS_PER_THREAD = 256;

    private RowSplit() {}

    /** Runs a row kernel over a weight's {@code n} rows on up to the kernels' thread count. */
    static void overWeightRows(String kernel, long n, Range range) {
        run(kernel, n, parts(n, n / MIN_WEIGHT_ROWS_PER_THREAD), range);
    }

    /**
     * Runs a kernel over a packed weight's {@code n} rows in whole panels of {@code panel} rows: each
     * range it is given starts at a panel's first row and holds whole panels.
     */
    static void overPanels(String kernel, long n, long panel, Range range) {
        long panels = n / panel;
        run(kernel, panels, parts(panels, n / MIN_WEIGHT_ROWS_PER_THREAD), (from, count) -> range.run(from * panel, count * panel));
    }

    /**
     * Parts to split {@code rows} into: the kernels' thread count ({@link SerialOps#kernelThreads}),
     * no more than {@code rows} nor than {@code worthSplitting} (the work counted in units each worth a
     * hand-off), at least one.
     */
    static int parts(long rows, long worthSplitting) {
        return (int) Math.max(1, Math.min(Math.min(SerialOps.kernelThreads(), rows), worthSplitting));
    }

    /** Splits rows [0, rows) into {@code parts} near-equal ranges and runs them in parallel; {@code kernel} names the C function in errors. */
    static void run(String kernel, long rows, int parts, Range range) {
        KernelThreads.Part[] all = new KernelThreads.Part[parts];
        boolean[] handed = new boolean[parts];
        for (int p = 0; p < parts; p++) {
            long from = rows * p / parts;
            all[p] = new KernelThreads.Part(range, from, rows * (p + 1) / parts - from);
            handed[p] = p > 0 && KernelThreads.offer(p - 1, all[p]);
        }
        for (int p = 0; p < parts; p++) if (!handed[p]) all[p].run();
        Throwable error = null;
        for (KernelThreads.Part part : all) {
            Throwable failed = part.await();        // every part, so no helper still writes when this returns
            if (error == null) error = failed;
        }
        if (error != null) throw new IllegalStateException("FFM call to " + kernel + " failed", error);
    }
}
