package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeLibrary;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * BloomTune's own C kernels (native/, built by Maven into the jar), bound through FFM. Absent on
 * platforms the build did not compile them for; callers then use the libtorch op chain.
 */
public final class NativeKernels {
    private NativeKernels() {}

    public static boolean available() { return NativeLibrary.available(); }

    static MethodHandle bind(String name, FunctionDescriptor descriptor) {
        return NativeLibrary.bind(name, descriptor);
    }

    /**
     * {@code name} bound with {@code descriptor} when the library is loaded and its
     * {@code supported()} function (no arguments, returns int) says this CPU has the instructions
     * the kernel needs (and {@link org.bloomtune.tensor.KernelSelection} allows: the library's checks
     * answer for both); otherwise null, and the caller keeps libtorch's path.
     */
    static MethodHandle bindIfSupported(String supported, String name, FunctionDescriptor descriptor) {
        if (!available()) return null;
        try {
            if ((int) bind(supported, FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact() == 0) return null;
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to " + supported + " failed", t);
        }
        return bind(name, descriptor);
    }

    /** {@code pack(w, n, k, out)}'s descriptor: a weight [n, k] rearranged into a buffer of its size (the panel layouts). */
    static final FunctionDescriptor PACK = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.ADDRESS);

    /** {@code f(panels, scales, x, bias, y, rows, n, k, ldy)}'s descriptor: the weight-only int8 panel products. */
    static final FunctionDescriptor INT8_PANELS_LINEAR = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG);

    /** A new tensor of {@code weight}'s shape and options that {@code pack} (named {@code name} in errors) fills from it. */
    static Tensor packed(MethodHandle pack, String name, Tensor weight) {
        Tensor out = torch.empty(weight.sizes().vec().get(), weight.options(), new MemoryFormatOptional());
        try {
            pack.invokeExact(NativeMemory.of(weight), weight.size(0), weight.size(1), NativeMemory.of(out));
        } catch (Throwable t) {
            out.close();
            throw new IllegalStateException("FFM call to " + name + " failed", t);
        }
        return out;
    }

    /**
     * A kernel's per-thread scratch: {@code threads} rows of the bytes {@code bytesFor(a, b)} says one
     * thread needs ({@code name}: that C function, for the error).
     */
    static Tensor threadScratch(MethodHandle bytesFor, String name, long a, long b, int threads) {
        return torch.empty(new long[]{threads, scratchBytes(bytesFor, name, a, b)}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
    }

    /** What {@code bytesFor(a, b)} says one thread's scratch takes. */
    static long scratchBytes(MethodHandle bytesFor, String name, long a, long b) {
        try {
            return (long) bytesFor.invokeExact(a, b);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to " + name + " failed", t);
        }
    }
}
