package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * {@code x Wᵀ + b} in float32 for a decode batch of {@link #MIN_ROWS}–{@link #MAX_ROWS} rows by
 * native/f32_rows_linear.c (AVX-512F), which reads W once for all the rows; W's rows are split
 * over libtorch's thread count. One row is BLAS's gemv (at the memory's rate already); where the
 * CPU lacks AVX-512F, or the tensors are not contiguous float32 CPU tensors outside autograd,
 * callers keep libtorch's {@code linear}.
 */
public final class F32RowsLinear {
    /** One row goes to gemv. */
    public static final int MIN_ROWS = 2;

    /** Rows up to which the kernel is used: a decode batch of eight (benchmarks/FINDINGS.md). */
    public static final int MAX_ROWS = 8;

    private static final MethodHandle KERNEL = bindIfSupported();

    private F32RowsLinear() {}

    /** True when this CPU has AVX-512F and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when the kernel takes {@code x} [..., in] times {@code weight} [out, in] (+ {@code bias} [out] or null). */
    public static boolean applies(Tensor x, Tensor weight, Tensor bias) {
        if (KERNEL == null || x.requires_grad() || weight.requires_grad()) return false;
        if (!f32Cpu(weight) || weight.dim() != 2 || !f32Cpu(x) || x.size(-1) != weight.size(1)) return false;
        if (bias != null && (!f32Cpu(bias) || bias.dim() != 1 || bias.size(0) != weight.size(0) || bias.requires_grad())) return false;
        long k = weight.size(1);
        if (k <= 0) return false;
        long rows = x.numel() / k;
        return rows >= MIN_ROWS && rows <= MAX_ROWS;
    }

    private static boolean f32Cpu(Tensor t) {
        return t.scalar_type().value == ScalarType.Float.value && t.device().is_cpu() && t.is_contiguous();
    }

    /** {@code x} [..., in] → [..., out] in float32; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor weight, Tensor bias) {
        if (!applies(x, weight, bias)) throw new IllegalArgumentException("f32_rows_linear does not take these tensors");
        return DenseRows.forward("bt_f32_rows_linear", KERNEL, x, weight, bias);
    }

    private static MethodHandle bindIfSupported() {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bindIfSupported("bt_f32_rows_supported", "bt_f32_rows_linear", FunctionDescriptor.ofVoid(a, a, a, a, l, l, l, l));
    }
}
