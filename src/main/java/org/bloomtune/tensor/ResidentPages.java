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
    private static final Optional<MethodHandle> MINCORE = LibC.function("mincore",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    private static final boolean SUPPORTED = probe();

    private ResidentPages() {}

    /** Whether this process's kernel populates pages on request. */
    public static boolean supported() { return SUPPORTED; }

    /**
     * Makes resident, in each of {@code rows} rows of {@code rowBytes} bytes laid end to end in
     * {@code buffer}, the bytes [{@code from}, {@code to}) of the row, leaving out the page that holds
     * byte {@code from - 1} (written or populated before). Neighbouring rows' pages go in one call,
     * and a run of pages already resident (a buffer the caching allocator hands back from an earlier
     * generation) none: populating a resident page still walks the page tables, and each run costs a
     * system call, where one {@code mincore} over all the rows is far cheaper (benchmarks/FINDINGS.md).
     * Returns the calls made.
     */
    public static long populateRows(MemorySegment buffer, long rows, long rowBytes, long from, long to) {
        if (rows < 0 || rowBytes < 0 || from < 0 || to > rowBytes || from > to || rows > 0 && rowBytes > buffer.byteSize() / rows) {
            throw new IllegalArgumentException("rows " + rows + " of " + rowBytes + " bytes, [" + from + ", " + to + ") in a buffer of " + buffer.byteSize());
        }
        if (!SUPPORTED || from == to || rows == 0) return 0;
        long base = buffer.address();
        long spanStart = down(base + from);
        long spanEnd = up(base + (rows - 1) * rowBytes + to);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment resident = residentPages(arena, spanStart, spanEnd);
            long calls = 0;
            long runStart = -1;
            long runEnd = -1;
            for (long r = 0; r < rows; r++) {
                long row = base + r * rowBytes;
                long start = from == 0 ? down(row) : up(row + from);
                long end = up(row + to);
                if (start >= end) continue;
                if (start <= runEnd) {
                    runEnd = Math.max(runEnd, end);
                    continue;
                }
                if (runEnd > runStart) calls += adviseMissing(resident, spanStart, runStart, runEnd);
                runStart = start;
                runEnd = end;
            }
            if (runEnd > runStart) calls += adviseMissing(resident, spanStart, runStart, runEnd);
            return calls;
        }
    }

    /**
     * One byte a page of [{@code start}, {@code end}) whose low bit says the page is resident, or
     * an empty segment (every page taken as missing) where {@code mincore} is not to be had.
     */
    private static MemorySegment residentPages(Arena arena, long start, long end) {
        if (MINCORE.isEmpty()) return MemorySegment.NULL;
        MemorySegment vector = arena.allocate((end - start) / PAGE);
        try {
            return (int) MINCORE.get().invokeExact(start, end - start, vector) == 0 ? vector : MemorySegment.NULL;
        } catch (Throwable t) {
            throw new IllegalStateException("mincore failed", t);
        }
    }

    /** Advises the pages of the run [{@code start}, {@code end}) from its first missing page to its last, if any: 1 call or 0. */
    private static int adviseMissing(MemorySegment resident, long spanStart, long start, long end) {
        if (resident.byteSize() == 0) return advise(start, end - start);
        long first = -1;
        long last = -1;
        for (long page = start; page < end; page += PAGE) {
            if ((resident.get(ValueLayout.JAVA_BYTE, (page - spanStart) / PAGE) & 1) != 0) continue;
            if (first < 0) first = page;
            last = page;
        }
        return first < 0 ? 0 : advise(first, last + PAGE - first);
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
