package org.bloomtune.tensor;

/**
 * Ends the process while a thread may still be inside libtorch. {@link System#exit} and
 * {@link Runtime#halt} both run the C library's exit handlers, and those of libtorch and OpenBLAS
 * do not survive a call in flight: OpenBLAS's joins its GEMM workers and waits forever, libtorch's
 * frees state a running op still reads (a crash). {@code _exit} skips them; what must not be lost
 * is written atomically beforehand, so this is no worse than {@code kill -9}.
 */
public final class ProcessExit {
    private ProcessExit() {}

    /** Flushes {@code System.out} and {@code System.err}, then ends the process with {@code code}; does not return. */
    public static void now(int code) {
        System.out.flush();
        System.err.flush();
        LibC.exitNow(code);
        Runtime.getRuntime().halt(code);      // off POSIX: the best the JVM offers
    }
}
