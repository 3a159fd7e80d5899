package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.invoke.MethodHandle;

/**
 * {@code x Wᵀ + b} in float32 for a decode batch of {@link #MIN_ROWS}–{@link #MAX_ROWS} rows by
 * native/f32_rows_linear.c (AVX-512F), which reads W once for up to eight rows; W's rows are split
 * over libtorch's thread count; one row is read front to back, at the memory's rate as BLAS's
 * gemv reads it. Where the CPU lacks AVX-512F, or the tensors are not contiguous float32 CPU
 * tensors outside autograd, callers keep libtorch's ops.
 */
public final class F32RowsLinear {
    /** From one row: a decode step at batch 1. */
    public static final int MIN_ROWS = 1;

    /** Rows one kernel call takes: a decode batch of eight, what a native decode step may hand it. */
    public static final int CALL_ROWS = DenseRows.CALL_ROWS;

    /**
     * Rows up to which the kernel is used, in groups of {@link #CALL_ROWS} against each block of
     * weight rows: a server's decode batch of sixteen and a short prompt's prefill, where libtorch's
     * GEMM packs the whole weight on every call; at 32 rows that GEMM was the faster (benchmarks/FINDINGS.md).
     */
    public static final int MAX_ROWS = 16;

    private static final MethodHandle KERNEL = DenseRows.bindIfSupported("bt_f32_rows_supported", "bt_f32_rows_linear");

    private F32RowsLinear() {}

    /** True when this CPU has AVX-512F and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when the kernel takes {@code x} [..., in] times {@code weight} [out, in] (+ {@code bias} [out] or null). */
    public static boolean applies(Tensor x, Tensor weight, Tensor bias) {
        if (KERNEL == null) return false;
        long rows = DenseRows.rows(x, weight, bias, ScalarType.Float);
        return rows >= MIN_ROWS && rows <= MAX_ROWS;
    }

    /** The native call {@link #forward} makes for {@code x}, for a native caller; null where it does not apply. */
    public static RowKernel rowKernel(Tensor x, Tensor weight, Tensor bias) {
        return applies(x, weight, bias) && x.numel() / weight.size(1) <= CALL_ROWS
                ? RowKernel.dense("bt_f32_rows_linear", weight, bias) : null;
    }

    /** {@code x} [..., in] → [..., out] in float32; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor weight, Tensor bias) {
        return forward(x, weight, bias, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x, Tensor weight, Tensor bias, RowsArgmax.Picks picks) {
        if (!applies(x, weight, bias)) throw new IllegalArgumentException("f32_rows_linear does not take these tensors");
        return DenseRows.forward("bt_f32_rows_linear", KERNEL, x, weight, bias, picks);
    }

}
