package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;

/**
 * BLOOM's tanh GELU and its input gradient over contiguous bfloat16 CPU tensors by native/gelu.c,
 * the elements split over libtorch's OpenMP threads — libtorch's bfloat16 {@code gelu(x, "tanh")}
 * and its backward at a fraction of the cost, computed in float and rounded once as libtorch
 * rounds. Its x · σ(2u) form keeps the negative tail that libtorch's 0.5x(1 + tanh u) loses to
 * cancellation, so the two differ there and, elsewhere, by a bfloat16 step now and then. Float32
 * stays with libtorch, whose results the float32 goldens hold to 1e-6.
 */
public final class Gelu {
    private static final MethodHandle FORWARD = NativeKernels.available() ? NativeKernels.bind("bt_gelu_tanh_bf16",
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)) : null;
    private static final MethodHandle BACKWARD = NativeKernels.available() ? NativeKernels.bind("bt_gelu_tanh_backward_bf16",
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)) : null;

    private Gelu() {}

    /** True when the kernel takes {@code x}: bfloat16, contiguous, on the CPU, with the kernels built. */
    public static boolean applies(Tensor x) {
        return FORWARD != null && x.scalar_type().value == ScalarType.BFloat16.value && x.is_contiguous() && x.is_cpu();
    }

    /** gelu(x) as a new tensor of x's shape; call only where {@link #applies}. */
    public static Tensor forward(Tensor x) {
        require(applies(x), x, x);
        Tensor y = torch.empty_like(x);
        try {
            FORWARD.invokeExact(NativeMemory.of(x), NativeMemory.of(y), x.numel(), threads());
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_gelu_tanh_bf16 failed", t);
        }
        return y;
    }

    /** dy · gelu'(x) as a new tensor: x's gradient from the output's {@code dy} (same shape, both where {@link #applies}). */
    public static Tensor backward(Tensor dy, Tensor x) {
        require(applies(x) && applies(dy) && Arrays.equals(Tensors.shape(dy), Tensors.shape(x)), dy, x);
        Tensor dx = torch.empty_like(x);
        try {
            BACKWARD.invokeExact(NativeMemory.of(dy), NativeMemory.of(x), NativeMemory.of(dx), x.numel(), threads());
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_gelu_tanh_backward_bf16 failed", t);
        }
        return dx;
    }

    private static int threads() { return Math.max(1, torch.get_num_threads()); }

    private static void require(boolean ok, Tensor dy, Tensor x) {
        if (!ok) {
            throw new IllegalArgumentException("bt_gelu_tanh_bf16 takes contiguous bfloat16 CPU tensors of one shape, got "
                    + x.scalar_type() + Tensors.shapeString(x) + " and " + dy.scalar_type() + Tensors.shapeString(dy));
        }
    }
}
