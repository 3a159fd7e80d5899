package org.bloomtune.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * BloomTune's CPU allocator for libtorch tensors (native/cpu_caching_allocator.c), installed by
 * {@link LibTorch#init()} in place of libtorch's default (glibc's {@code posix_memalign}). Every
 * buffer of 256 KiB or more is its own mapping, and a freed one is kept whole for the next request
 * of nearly its size; cached buffers are unmapped, oldest first, before a new mapping would take
 * the footprint more than {@link #setCacheLimit a limit} past the most that was ever live at once,
 * and the one that would go first for a new buffer is cut or grown into it instead, so its resident
 * pages are not zeroed by the kernel again (shapes that change every batch, as on real data).
 * glibc's heap otherwise holds 100–200 MB of freed, split tensor buffers above what a step keeps
 * live (benchmarks/FINDINGS.md). Buffers of 2 MiB and more are on transparent huge pages unless
 * {@link #setHugePages turned off} or {@link #smallPages asked otherwise}. Smaller buffers still
 * come from glibc.
 *
 * <p>Set {@code BLOOMTUNE_CPU_ALLOCATOR=libtorch} to keep libtorch's own. The object is built to
 * the C++ ABI of the libtorch this build ships (its headers are not in the JavaCPP jars), so it is
 * installed only on that libtorch, and only after the native side has checked the default
 * allocator's vtable and the layout of an allocation it makes; otherwise libtorch's stays, with a
 * note in the log.
 */
public final class CpuCachingAllocator {
    public static final String VARIABLE = "BLOOMTUNE_CPU_ALLOCATOR";
    /** What the cache may hold above the live high-water mark unless {@link #setCacheLimit} says otherwise. */
    public static final long DEFAULT_CACHE_LIMIT = 256L << 20;
    // The libtorch whose c10::Allocator vtable and DataPtr layout the native side was written against.
    private static final String ABI_VERSION = "2.10.";
    private static volatile boolean installed;
    private static volatile String inUse = "libtorch's (LibTorch.init() not called yet)";

    private CpuCachingAllocator() {}

    /**
     * Byte counts and cache counters of the allocator since it was installed; {@code recycled} counts
     * the misses served by taking over a cached buffer's pages (cut or grown) rather than new ones.
     */
    public record Stats(long largeInUse, long largeCached, long hits, long misses, long smallInUse, long recycled) {
        /** Bytes of tensor memory in use through this allocator (the cache not counted). */
        public long inUse() { return largeInUse + smallInUse; }
    }

    /** Whether libtorch's CPU tensors now come from this allocator. */
    public static boolean installed() { return installed; }

    /** Called once by {@link LibTorch#init()}, after libtorch is loaded and before its first tensor. */
    static void installUnlessDisabled() {
        String choice = LibC.getenv(VARIABLE);
        if ("libtorch".equals(choice)) {
            inUse = "libtorch's (" + VARIABLE + "=libtorch)";
            return;
        }
        var log = System.getLogger("org.bloomtune");
        if (choice != null && !choice.equals("caching")) {
            log.log(System.Logger.Level.WARNING, VARIABLE + " is 'caching' or 'libtorch', not '" + choice + "': using 'caching'");
        }
        String refusal = install();
        if (refusal != null) {
            inUse = "libtorch's (" + refusal + ")";
            log.log(System.Logger.Level.INFO, "libtorch's own CPU allocator stays: " + refusal);
        }
    }

    /** Which allocator libtorch's CPU tensors come from, and why when it is libtorch's own. */
    public static String inUse() { return inUse; }

    /** Installs the allocator; null when done, else why not. */
    private static String install() {
        if (!NativeLibrary.available()) return NativeLibrary.unavailableReason();
        if (!LibTorch.version().startsWith(ABI_VERSION)) return "not the libtorch " + ABI_VERSION + "x it was built against";
        try {
            SymbolLookup c10 = LibTorch.bundledLibrary("libc10.so");
            var getCpuAllocator = Linker.nativeLinker().downcallHandle(symbol(c10, "_ZN3c1015GetCPUAllocatorEv"),
                    FunctionDescriptor.of(ValueLayout.ADDRESS));
            MemorySegment defaultObject = (MemorySegment) getCpuAllocator.invokeExact();
            int code = (int) Native.INSTALL.invokeExact(defaultObject,
                    symbol(c10, "_ZTVN3c1019DefaultCPUAllocatorE"),
                    symbol(c10, "_ZNK3c109Allocator18is_simple_data_ptrERKNS_7DataPtrE"),
                    symbol(c10, "_ZN3c1015SetCPUAllocatorEPNS_9AllocatorEh"),
                    DEFAULT_CACHE_LIMIT);
            if (code != 0) return "the default allocator failed check " + code;
            MemorySegment now = (MemorySegment) getCpuAllocator.invokeExact();
            MemorySegment ours = (MemorySegment) Native.OBJECT.invokeExact();
            if (!now.equals(ours)) return "libtorch kept another allocator";
        } catch (Throwable t) {
            return "FFM call failed: " + t;
        }
        installed = true;
        inUse = "BloomTune's caching allocator";
        return null;
    }

    /** Current counters; zeros while not installed. */
    public static Stats stats() {
        if (!installed) return new Stats(0, 0, 0, 0, 0, 0);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG, 6);
            Native.STATS.invokeExact(out);
            long[] s = out.toArray(ValueLayout.JAVA_LONG);
            return new Stats(s[0], s[1], s[2], s[3], s[4], s[5]);
        } catch (Throwable t) {
            throw new IllegalStateException("bt_allocator_stats failed", t);
        }
    }

    /** Unmaps every freed buffer the cache holds. */
    public static void releaseCached() {
        if (installed) call("bt_allocator_release_cached", () -> { Native.RELEASE.invokeExact(); });
    }

    /**
     * Whether new buffers of 2 MiB or more ask the kernel for transparent huge pages: a fresh
     * buffer then costs one page fault per 2 MiB instead of one per 4 KiB, which matters when the
     * cache is small ({@code --low-memory}) or the shapes keep changing (training on real data),
     * and the GEMMs reading them miss the TLB less. On by default. Needs the machine's
     * {@code transparent_hugepage} set to {@code madvise} or {@code always}.
     */
    public static void setHugePages(boolean on) {
        if (loadedAndInstalled()) call("bt_allocator_set_huge_pages", () -> { Native.SET_HUGE_PAGES.invokeExact(on ? 1 : 0); });
    }

    /**
     * Until closed, new buffers this thread asks for stay on 4 KiB pages, so a buffer reserved
     * large and filled a little at a time (a KV cache sized for the longest generation) is
     * resident only where written. On huge pages one write per 2 MiB would commit all of it.
     */
    public static SmallPages smallPages() {
        if (!loadedAndInstalled()) return () -> { };
        int before = smallPagesHere(1);
        return () -> smallPagesHere(before);   // an enclosing scope stays in force
    }

    private static int smallPagesHere(int on) {
        try {
            return (int) Native.SMALL_PAGES_HERE.invokeExact(on);
        } catch (Throwable t) {
            throw new IllegalStateException("bt_allocator_small_pages_here failed", t);
        }
    }

    /** The scope {@link #smallPages} opens. */
    public interface SmallPages extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * How far the cache may take the footprint (live plus cached buffers) above the most that was
     * live at once since the cache was last emptied ({@link #releaseCached}): a new buffer first
     * unmaps cached ones until the footprint is within that bound. At 0 the cache never raises
     * the peak above the live set's own; the default leaves room for a repeating pattern of
     * buffers to be reused whole. Where that high-water mark is below the limit (a small model),
     * it is the bound instead: the cache never holds more than the most that was live.
     */
    public static void setCacheLimit(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("cache limit must be >= 0, got " + bytes);
        if (loadedAndInstalled()) call("bt_allocator_set_limit", () -> { Native.SET_LIMIT.invokeExact(bytes); });
    }

    /** Whether freed buffers are kept for reuse at all; off, each is unmapped as it is freed. */
    public static void setCaching(boolean on) {
        if (loadedAndInstalled()) call("bt_allocator_set_caching", () -> { Native.SET_CACHING.invokeExact(on ? 1 : 0); });
    }

    /**
     * The most the cache may hold on top of a live peak of {@code peakLive} bytes: the limit, or
     * that peak where it is smaller ({@link #setCacheLimit}); 0 when nothing is cached. Batches of
     * changing shapes fill it — a cached buffer fits no later request — where a repeating step
     * reuses every buffer and adds little.
     */
    public static long cacheAllowance(long peakLive) {
        if (!installed) return 0;
        try {
            return (long) Native.CACHE_ALLOWANCE.invokeExact(Math.max(0, peakLive));
        } catch (Throwable t) {
            throw new IllegalStateException("bt_allocator_cache_allowance failed", t);
        }
    }

    // A setting made before the first tensor (ProcessMemory.lowMemory) must reach the allocator: load libtorch first.
    private static boolean loadedAndInstalled() {
        LibTorch.init();
        return installed;
    }

    // A block body, so invokeExact is typed as returning void (an expression lambda types it as Object).
    private interface NativeCall {
        void run() throws Throwable;
    }

    private static void call(String function, NativeCall call) {
        try {
            call.run();
        } catch (Throwable t) {
            throw new IllegalStateException(function + " failed", t);
        }
    }

    private static MemorySegment symbol(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException("libc10.so has no " + name));
    }

    /** The C side's functions, bound on first use. */
    private static final class Native {
        static final MethodHandle INSTALL = bind("bt_allocator_install", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        static final MethodHandle OBJECT = bind("bt_allocator_object", FunctionDescriptor.of(ValueLayout.ADDRESS));
        static final MethodHandle STATS = bind("bt_allocator_stats", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        static final MethodHandle RELEASE = bind("bt_allocator_release_cached", FunctionDescriptor.ofVoid());
        static final MethodHandle SET_LIMIT = bind("bt_allocator_set_limit", FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG));
        static final MethodHandle CACHE_ALLOWANCE = bind("bt_allocator_cache_allowance", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        static final MethodHandle SET_CACHING = bind("bt_allocator_set_caching", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
        static final MethodHandle SET_HUGE_PAGES = bind("bt_allocator_set_huge_pages", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
        static final MethodHandle SMALL_PAGES_HERE = bind("bt_allocator_small_pages_here", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

        private static MethodHandle bind(String name, FunctionDescriptor descriptor) {
            return NativeLibrary.bind(name, descriptor);
        }
    }
}
