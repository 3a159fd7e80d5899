package org.bloomtune.kernels;

import org.bytedeco.pytorch.global.torch;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * libtorch's ops on the calling thread alone, for a decode step's few rows. Its intra-op pool splits
 * an op over eight rows (a layer norm, a GELU over 8 × 4096) into an OpenMP region, and between a
 * step's regions the pool's workers sleep (libtorch starts with a passive wait policy, and the native
 * kernels run on {@link KernelThreads}), so each region pays a wake-up that costs several times the
 * op (benchmarks/FINDINGS.md).
 * Inside a scope the thread's OpenMP count is one (libtorch reads it back as its intra-op count);
 * the native kernels keep splitting over the count from before. Scopes nest; each restores what it
 * found.
 */
public final class SerialOps implements AutoCloseable {
    /** Rows up to which a decode step's ops run serially: the batch the native row kernels take. */
    public static final int MAX_ROWS = LlmInt8Rows.MAX_ROWS;

    private static final MethodHandle SET = NativeKernels.available()
            ? NativeKernels.bind("bt_omp_set_num_threads", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT)) : null;
    private static final ThreadLocal<Integer> KERNEL_THREADS = new ThreadLocal<>();

    private final int before;
    private final boolean outermost;

    private SerialOps() {
        before = torch.get_num_threads();
        outermost = KERNEL_THREADS.get() == null;
        if (outermost) KERNEL_THREADS.set(before);
        set(1);
    }

    /** Until closed, libtorch's ops on this thread run on it alone; without the native library, nothing changes. */
    public static SerialOps open() {
        return new SerialOps();
    }

    /** Threads a native kernel splits over on this thread: libtorch's count, or the count before the outermost open scope. */
    static int kernelThreads() {
        Integer inScope = KERNEL_THREADS.get();
        return inScope != null ? inScope : torch.get_num_threads();
    }

    @Override
    public void close() {
        set(before);
        if (outermost) KERNEL_THREADS.remove();
    }

    private static void set(int threads) {
        if (SET == null) return;
        try {
            SET.invokeExact(threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_omp_set_num_threads failed", t);
        }
    }
}
