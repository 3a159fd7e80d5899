package org.bloomtune.tensor;

import javax.management.JMException;
import javax.management.ObjectName;
import java.lang.management.ManagementFactory;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The C heap held by code other than the JVM itself: {@link ProcessMemory#nativeHeapBytes} less
 * the mallocs the JVM's Native Memory Tracking counts as its own. The JVM's share moves by
 * megabytes while its compiler threads take arena chunks and pool them for seconds afterwards,
 * in the background of any test; libtorch's and this project's allocations are what a leak check
 * means to watch, and they are this figure. Needs {@code -XX:NativeMemoryTracking=summary}, which
 * the pom's surefire {@code argLine} sets.
 */
public final class HeapOutsideTheJvm {
    private static final Pattern TOTAL_MALLOC = Pattern.compile("Total:[^\\n]*\\n\\s*malloc: (\\d+)");

    private HeapOutsideTheJvm() {}

    /** Bytes in glibc's heap, and in the caching allocator's large buffers, that the JVM did not allocate. */
    public static long bytes() {
        long jvm = jvmMallocBytes();
        return ProcessMemory.nativeHeapBytes() - jvm;
    }

    /**
     * Whether {@code heap} (one {@link #bytes} reading after each round of equal work) rose by at
     * least {@code bytes} from every window of two rounds' floor to the next. The JVM's own mallocs
     * move the floor by megabytes as its compiler threads take and pool arenas, and a library's
     * buffer made on first use may raise it once; a leak raises every window's.
     */
    public static boolean roseInEveryWindow(long[] heap, long bytes) {
        long[] floors = new long[heap.length / 2];
        for (int w = 0; w < floors.length; w++) floors[w] = Math.min(heap[2 * w], heap[2 * w + 1]);
        boolean everyWindowRose = true;
        for (int w = 1; w < floors.length; w++) everyWindowRose &= floors[w] - floors[w - 1] >= bytes;
        return everyWindowRose;
    }

    /** The JVM's own malloc total, from the {@code VM.native_memory summary} diagnostic command. */
    static long jvmMallocBytes() {
        String report;
        try {
            report = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "vmNativeMemory",
                    new Object[]{new String[]{"summary", "scale=b"}}, new String[]{String[].class.getName()});
        } catch (JMException e) {
            throw new IllegalStateException("VM.native_memory summary failed: " + e.getMessage(), e);
        }
        Matcher total = TOTAL_MALLOC.matcher(report);
        if (!total.find()) {
            throw new IllegalStateException("no malloc total in VM.native_memory's report (run the JVM with "
                    + "-XX:NativeMemoryTracking=summary, as the pom's surefire argLine does): " + report.strip());
        }
        return Long.parseLong(total.group(1));
    }
}
