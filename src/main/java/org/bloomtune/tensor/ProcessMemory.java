package org.bloomtune.tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalLong;

/** Resident memory of this process from Linux's /proc: native tensors included, unlike the JVM's heap figures. */
public final class ProcessMemory {
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final String THP_VARIABLE = "THP_MEM_ALLOC_ENABLE";

    private ProcessMemory() {}

    /**
     * Bytes this process can still take before the machine or its container runs out: the
     * kernel's MemAvailable, capped by a cgroup v2 memory limit when one is set.
     */
    public static long availableBytes() {
        long available = meminfo("MemAvailable:");
        try {
            Path max = Path.of("/sys/fs/cgroup/memory.max");
            Path current = Path.of("/sys/fs/cgroup/memory.current");
            if (Files.isReadable(max) && Files.isReadable(current)) {
                String limit = Files.readString(max).strip();
                if (!limit.equals("max")) {
                    long free = Long.parseLong(limit) - Long.parseLong(Files.readString(current).strip());
                    available = Math.min(available, Math.max(0, free));
                }
            }
        } catch (IOException | NumberFormatException e) {
            // no readable cgroup limit: the machine's figure stands
        }
        return available;
    }

    /** MemTotal: the machine's physical memory. */
    public static long totalBytes() { return meminfo("MemTotal:"); }

    private static long meminfo(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith(name)) return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/meminfo: " + e.getMessage(), e);
        }
        return Long.MAX_VALUE;   // not Linux: no figure to hold a run against
    }

    /** VmRSS: resident bytes now. */
    public static long residentBytes() { return field("VmRSS:"); }

    /** VmHWM: the highest resident bytes since start or since {@link #resetPeak}. */
    public static long peakResidentBytes() { return field("VmHWM:"); }

    /** {@link #peakResidentBytes} in MiB where the OS reports it (Linux), else empty. */
    public static OptionalLong peakResidentMib() {
        return Files.isReadable(STATUS) ? OptionalLong.of(peakResidentBytes() >> 20) : OptionalLong.empty();
    }

    /** Resets VmHWM to the current RSS (Linux 4.0+: writing 5 to clear_refs). */
    public static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot reset the peak RSS: " + e.getMessage(), e);
        }
    }

    /**
     * Hands memory that libtorch freed back to the OS: the buffers {@link CpuCachingAllocator} keeps
     * for reuse, and glibc's free heap ({@code malloc_trim}); without it the transient float copies
     * of a quantized load stay in RSS. Called at phase boundaries (after a load; three times a step
     * by the recomputing reverse pass), where the next phase allocates other sizes.
     */
    public static void trim() {
        CpuCachingAllocator.releaseCached();
        if (Glibc.MALLOC_TRIM.isEmpty()) return;
        try {
            int ignored = (int) Glibc.MALLOC_TRIM.get().invokeExact(0L);
        } catch (Throwable t) {
            throw new IllegalStateException("malloc_trim failed", t);
        }
    }

    /**
     * Makes glibc serve every allocation of at least {@code bytes} with its own mapping and unmap
     * it on free ({@code mallopt(M_MMAP_THRESHOLD)}), instead of raising that threshold as it does
     * by default and then keeping freed tensor buffers in its heap. Lower peak RSS for a price in
     * speed, as the pages are faulted in afresh (benchmarks/FINDINGS.md has the figures). Returns
     * false off glibc.
     */
    public static boolean returnFreedBuffers(long bytes) {
        if (Glibc.MALLOPT.isEmpty()) return false;
        final int mMmapThreshold = -3;
        try {
            int ok = (int) Glibc.MALLOPT.get().invokeExact(mMmapThreshold, (int) Math.min(Integer.MAX_VALUE, bytes));
            return ok == 1;
        } catch (Throwable t) {
            throw new IllegalStateException("mallopt failed", t);
        }
    }

    /**
     * Asks libtorch's own CPU allocator (in use when {@link CpuCachingAllocator} is not) to back its
     * allocations of 2 MB and more with transparent huge pages ({@code THP_MEM_ALLOC_ENABLE=1},
     * unless the variable is already set). Meant to go with
     * {@link #returnFreedBuffers}: every large tensor then gets fresh pages, and a fault per 2 MiB
     * instead of per 4 KiB gives back much of the time that costs, at the same peak
     * (benchmarks/FINDINGS.md). libtorch reads the variable once, at its first CPU allocation, so
     * this must run before any tensor is made; after that it changes nothing. The machine's
     * {@code transparent_hugepage} setting must allow {@code madvise}.
     *
     * @return whether the variable now asks for huge pages (false when the user set it otherwise, or off POSIX)
     */
    public static boolean requestHugePages() {
        LibC.setenvIfAbsent(THP_VARIABLE, "1");
        return "1".equals(LibC.getenv(THP_VARIABLE));
    }

    /**
     * What {@code --low-memory} sets: every freed tensor buffer handed back to the OS at once (the
     * {@link CpuCachingAllocator}'s cache off, glibc's mmap threshold 1 MiB for what it serves)
     * and fresh buffers on huge pages, asked of BloomTune's allocator and of libtorch's (in case
     * that one is in use; it reads its variable at its first allocation, so call this before the
     * first tensor). Lower peak memory, slower steps (benchmarks/FINDINGS.md). Returns false off glibc.
     */
    public static boolean lowMemory() {
        requestHugePages();
        CpuCachingAllocator.setCaching(false);
        CpuCachingAllocator.setHugePages(true);
        return returnFreedBuffers(1L << 20);
    }

    /**
     * Bytes currently allocated through the C heap (glibc {@code mallinfo2}: in-use small blocks
     * plus mmapped large ones) and by {@link CpuCachingAllocator} — where libtorch's CPU tensors
     * live, and unlike RSS not moved by the Java heap growing or an allocator keeping freed pages.
     * -1 off glibc.
     */
    public static long nativeHeapBytes() {
        if (Glibc.MALLINFO2.isEmpty()) return -1;
        // The struct comes back by value into memory of this call's arena.
        try (Arena arena = Arena.ofConfined()) {
            var info = (MemorySegment) Glibc.MALLINFO2.get().invokeExact((SegmentAllocator) arena);
            return info.get(ValueLayout.JAVA_LONG, Glibc.offset("uordblks")) + info.get(ValueLayout.JAVA_LONG, Glibc.offset("hblkhd"))
                    + CpuCachingAllocator.stats().largeInUse();   // its small buffers are in glibc's count
        } catch (Throwable t) {
            throw new IllegalStateException("mallinfo2 failed", t);
        }
    }

    /** glibc's allocator functions, looked up once on first use. */
    private static final class Glibc {
        static final MemoryLayout MALLINFO = mallinfoLayout();
        static final Optional<MethodHandle> MALLOC_TRIM =
                LibC.function("malloc_trim", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        static final Optional<MethodHandle> MALLOPT =
                LibC.function("mallopt", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        static final Optional<MethodHandle> MALLINFO2 = LibC.function("mallinfo2", FunctionDescriptor.of(MALLINFO));

        private static MemoryLayout mallinfoLayout() {
            var size = ValueLayout.JAVA_LONG;
            return MemoryLayout.structLayout(size.withName("arena"), size.withName("ordblks"), size.withName("smblks"),
                    size.withName("hblks"), size.withName("hblkhd"), size.withName("usmblks"), size.withName("fsmblks"),
                    size.withName("uordblks"), size.withName("fordblks"), size.withName("keepcost"));
        }

        static long offset(String field) { return MALLINFO.byteOffset(MemoryLayout.PathElement.groupElement(field)); }
    }

    private static long field(String name) {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith(name)) return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + STATUS + ": " + e.getMessage(), e);
        }
        throw new IllegalStateException("no " + name + " in " + STATUS);
    }
}
