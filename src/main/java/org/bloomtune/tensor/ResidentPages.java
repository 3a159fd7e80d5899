package org.bloomtune.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Makes pages of a buffer resident before they are written ({@code madvise(MADV_POPULATE_WRITE)},
 * Linux 5.14 and later): the kernel maps a run of pages in one call instead of taking one page
 * fault per 4 KiB page as a kernel's stores reach them. The contents do not change. Where the call
 * is missing (another C library, an older kernel) nothing is done and the pages fault in as before.
 * Faults are what a buffer on 4 KiB pages written a little at a time pays for (a KV cache); on a
 * virtual machine a page populated ahead and then written costs about half a faulted one
 * (benchmarks/FINDINGS.md).
 */
public final class ResidentPages {
    static final long PAGE = 4096;
    private static final int MADV_POPULATE_WRITE = 23;
    private static final Optional<MethodHandle> MADVISE = LibC.function("madvise",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final boolean SUPPORTED = probe();

    private ResidentPages() {}

    /** Whether this process's kernel populates pages on request. */
    public static boolean supported() { return SUPPORTED; }

    /**
     * Makes resident, in each of {@code rows} rows of {@code rowBytes} bytes laid end to end in
     * {@code buffer}, the bytes [{@code from}, {@code to}) of the row, leaving out the page that holds
     * byte {@code from - 1} (written or populated before). Neighbouring rows' pages go in one call.
     * Returns the calls made.
     */
    public static long populateRows(MemorySegment buffer, long rows, long rowBytes, long from, long to) {
        if (rows < 0 || rowBytes < 0 || from < 0 || to > rowBytes || from > to || rows > 0 && rowBytes > buffer.byteSize() / rows) {
            throw new IllegalArgumentException("rows " + rows + " of " + rowBytes + " bytes, [" + from + ", " + to + ") in a buffer of " + buffer.byteSize());
        }
        if (!SUPPORTED || from == to) return 0;
        long calls = 0;
        long runStart = -1;
        long runEnd = -1;
        long base = buffer.address();
        for (long r = 0; r < rows; r++) {
            long row = base + r * rowBytes;
            long start = from == 0 ? down(row) : up(row + from);
            long end = up(row + to);
            if (start >= end) continue;
            if (start <= runEnd) {
                runEnd = Math.max(runEnd, end);
                continue;
            }
            if (runEnd > runStart) calls += advise(runStart, runEnd - runStart);
            runStart = start;
            runEnd = end;
        }
        if (runEnd > runStart) calls += advise(runStart, runEnd - runStart);
        return calls;
    }

    private static long down(long address) { return address & -PAGE; }

    private static long up(long address) { return (address + PAGE - 1) & -PAGE; }

    /**
     * One call over whole pages each holding some of the buffer's bytes, so all mapped; a failure
     * (the kernel short of memory for them, say) leaves those pages to fault in as they would have.
     */
    private static int advise(long address, long length) {
        try {
            int ignored = (int) MADVISE.orElseThrow().invokeExact(address, length, MADV_POPULATE_WRITE);
            return 1;
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed", t);
        }
    }

    /** One page of our own populated: 0 where the kernel knows the advice, -1 (EINVAL) where it does not. */
    private static boolean probe() {
        if (MADVISE.isEmpty() || !System.getProperty("os.name", "").startsWith("Linux")) return false;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment page = arena.allocate(2 * PAGE, PAGE);
            return (int) MADVISE.get().invokeExact(page.address(), PAGE, MADV_POPULATE_WRITE) == 0;
        } catch (Throwable t) {
            return false;
        }
    }
}
