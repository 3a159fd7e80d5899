package org.bloomtune.kernels;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Runs a native kernel over a matrix's rows in parallel: {@code parts} contiguous ranges, the
 * first on the calling thread and the others on {@link KernelThreads}' helpers. A share with as
 * much work as an lm_head's (its weight rows times the rows of x) is taken in chunks, so that a
 * thread that finishes first takes what is left of the others' (as native/decode_blocks.c does for
 * the blocks' linears).
 */
final class RowSplit {
    /** One range of rows given to the kernel (a block lambda: a signature-polymorphic invokeExact must be a statement to return void). */
    @FunctionalInterface
    interface Range {
        void run(long from, long count) throws Throwable;
    }

    /** Rows of a weight a thread takes at least: fewer cost more to hand over than to read. */
    static final long MIN_WEIGHT_ROWS_PER_THREAD = 256;

    /**
     * Work of a share (its weight rows × the rows of x) from which it is cut into
     * {@link #CHUNKS_PER_SHARE} chunks: a vocabulary's at one row, a block's at a prefill's rows, not
     * a block's at a decode step's. The two vCPUs of a VM often run at different speeds for a while;
     * with fixed halves the faster waited for the slower (benchmarks/FINDINGS.md).
     */
    static final long CLAIMED_SHARE_WORK = 32_768;
    static final int CHUNKS_PER_SHARE = 64;

    /** A kernel call on weight rows [from, from + count) and x's rows [row, row + rows). */
    @FunctionalInterface
    interface Group {
        void run(long from, long count, long row, long rows) throws Throwable;
    }

    /**
     * Bytes of weight rows a thread multiplies by every group of x's rows in turn when x has more
     * rows than one call takes: the first group reads them from memory, the others from L2.
     */
    private static final long GROUP_BLOCK_BYTES = 512 << 10;

    /** Longs between two shares' claim words: a cache line each. */
    private static final int CLAIM_STRIDE = 8;

    private RowSplit() {}

    /** Runs a row kernel over a weight's {@code n} rows, times {@code xRows} rows of x, on up to the kernels' thread count. */
    static void overWeightRows(String kernel, long n, long xRows, Range range) {
        split(kernel, n, xRows, parts(n, n / MIN_WEIGHT_ROWS_PER_THREAD), range);
    }

    /** {@link #overWeightRows} in fixed shares always: for a kernel that prepares x on every call (LLM.int8 quantizes it). */
    static void overWeightRowsInShares(String kernel, long n, Range range) {
        run(kernel, n, parts(n, n / MIN_WEIGHT_ROWS_PER_THREAD), range);
    }

    /**
     * Runs a kernel over a packed weight's {@code n} rows, times {@code xRows} rows of x, in whole
     * panels of {@code panel} rows: each range it is given starts at a panel's first row and holds
     * whole panels.
     */
    static void overPanels(String kernel, long n, long panel, long xRows, Range range) {
        long panels = n / panel;
        split(kernel, panels, panel * xRows, parts(panels, n / MIN_WEIGHT_ROWS_PER_THREAD), (from, count) -> range.run(from * panel, count * panel));
    }

    /** {@link #overPanels} in fixed shares always: for a kernel that prepares x on every call (LLM.int8 quantizes it). */
    static void overPanelsInShares(String kernel, long n, long panel, Range range) {
        long panels = n / panel;
        run(kernel, panels, parts(panels, n / MIN_WEIGHT_ROWS_PER_THREAD), (from, count) -> range.run(from * panel, count * panel));
    }

    /** {@code units} each worth {@code workPerUnit} (weight rows × rows of x) in fixed shares, or in claimed chunks where a share's work is an lm_head's. */
    private static void split(String kernel, long units, long workPerUnit, int parts, Range range) {
        if (parts > 1 && units / parts * workPerUnit >= CLAIMED_SHARE_WORK) claimed(kernel, units, parts, range);
        else run(kernel, units, parts, range);
    }

    /**
     * Units [0, units) in {@code parts} shares, each cut into chunks: a share's owner takes its
     * chunks front to back (one stream through memory, as a fixed share), then takes what is left
     * of the other shares from their back ends. Every unit runs once.
     */
    static void claimed(String kernel, long units, int parts, Range range) {
        AtomicLongArray taken = new AtomicLongArray(parts * CLAIM_STRIDE);
        run(kernel, parts, parts, (owner, one) -> {
            for (int i = 0; i < parts; i++) runShare(units, parts, (int) ((owner + i) % parts), taken, i > 0, range);
        });
    }

    private static void runShare(long units, int parts, int owner, AtomicLongArray taken, boolean fromBack, Range range) throws Throwable {
        long start = units * owner / parts;
        long end = units * (owner + 1) / parts;
        long size = Math.max(1, (end - start) / CHUNKS_PER_SHARE);
        long chunks = (end - start + size - 1) / size;
        for (long chunk; (chunk = claim(taken, owner * CLAIM_STRIDE, chunks, fromBack)) >= 0; ) {
            long from = start + chunk * size;
            range.run(from, Math.min(size, end - from));
        }
    }

    /**
     * The next chunk of a share of {@code chunks}, from its front or its back, or -1 when none is
     * left: the slot counts the chunks taken from the front in its high half, from the back in its low.
     */
    private static long claim(AtomicLongArray taken, int slot, long chunks, boolean fromBack) {
        while (true) {
            long t = taken.get(slot);
            long front = t >>> 32;
            long back = t & 0xffff_ffffL;
            if (front + back >= chunks) return -1;
            if (taken.compareAndSet(slot, t, t + (fromBack ? 1 : 1L << 32))) return fromBack ? chunks - 1 - back : front;
        }
    }

    /**
     * A thread's range [from, from + count) of weight rows ({@code rowBytes} bytes each) against
     * {@code xRows} rows of x, {@code callRows} at a time: one call when x has no more rows (one stream
     * through the range), else block by block, every group of x's rows against a block while it
     * stays in L2.
     */
    static void inGroups(long from, long count, long rowBytes, long xRows, long callRows, Group call) throws Throwable {
        long block = xRows <= callRows ? count : Math.max(callRows, GROUP_BLOCK_BYTES / rowBytes);
        for (long j = from; j < from + count; j += block) {
            long nj = Math.min(block, from + count - j);
            for (long r = 0; r < xRows; r += callRows) call.run(j, nj, r, Math.min(callRows, xRows - r));
        }
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
