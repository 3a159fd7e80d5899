package org.bloomtune.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** Which pages of memory are resident, as the kernel's {@code mincore} reports them, and fresh mappings to ask about. */
public final class Residency {
    public static final long PAGE = 4096;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle MINCORE = handle("mincore",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    private static final MethodHandle MMAP = handle("mmap", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
    private static final MethodHandle MUNMAP = handle("munmap",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    private static final MethodHandle MADVISE = handle("madvise",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));

    private Residency() {}

    private static MethodHandle handle(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
    }

    /** Whether the page holding {@code address} is resident. */
    public static boolean resident(long address) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment vector = arena.allocate(1);
            int rc = (int) MINCORE.invokeExact(address & -PAGE, PAGE, vector);
            if (rc != 0) throw new IllegalStateException("mincore failed for 0x" + Long.toHexString(address));
            return (vector.get(ValueLayout.JAVA_BYTE, 0) & 1) != 0;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Resident pages among the {@code pages} pages from {@code address} (page-aligned). */
    public static int residentPages(long address, long pages) {
        int n = 0;
        for (long p = 0; p < pages; p++) if (resident(address + p * PAGE)) n++;
        return n;
    }

    /** A fresh private anonymous mapping of {@code pages} pages on 4 KiB pages, none resident yet; {@link #unmap} it. */
    public static MemorySegment map(long pages) {
        try {
            long address = (long) MMAP.invokeExact(0L, pages * PAGE, 3 /* PROT_READ | PROT_WRITE */, 0x22 /* MAP_PRIVATE | MAP_ANONYMOUS */, -1, 0L);
            if (address == -1) throw new IllegalStateException("mmap failed");
            int ignored = (int) MADVISE.invokeExact(address, pages * PAGE, 15 /* MADV_NOHUGEPAGE */);
            return MemorySegment.ofAddress(address).reinterpret(pages * PAGE);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public static void unmap(MemorySegment mapping) {
        try {
            int ignored = (int) MUNMAP.invokeExact(mapping.address(), mapping.byteSize());
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
