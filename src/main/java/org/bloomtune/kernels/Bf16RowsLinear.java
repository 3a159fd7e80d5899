package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.invoke.MethodHandle;

/**
 * {@code x Wᵀ + b} in bfloat16 for at most {@link #MAX_ROWS} rows of x — a decode step — by
 * native/bf16_rows_linear.c (AVX512_BF16), which reads W once for up to eight rows; W's rows are split
 * over libtorch's thread count. Where the CPU lacks AVX512_BF16, or the tensors are not
 * contiguous bfloat16 CPU tensors outside autograd, callers keep libtorch's {@code linear}.
 */
public final class Bf16RowsLinear {
    /**
     * Rows one kernel call takes: measured to beat libtorch's linear here by 1.3–1.5× on a decode
     * step's matrices at 1, 2, 4 and 8 rows (all rows of x, packed side by side, share each loaded
     * weight line; benchmarks/FINDINGS.md).
     */
    public static final int CALL_ROWS = DenseRows.CALL_ROWS;

    /** Rows up to which the kernel is used, in groups of {@link #CALL_ROWS}: the float32 kernel's limit, measured the same way (benchmarks/FINDINGS.md). */
    public static final int MAX_ROWS = F32RowsLinear.MAX_ROWS;

    private static final MethodHandle KERNEL = DenseRows.bindIfSupported("bt_bf16_rows_supported", "bt_bf16_rows_linear");

    private Bf16RowsLinear() {}

    /** True when this CPU has AVX512_BF16 and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when the kernel takes {@code x} [..., in] times {@code weight} [out, in] (+ {@code bias} [out] or null). */
    public static boolean applies(Tensor x, Tensor weight, Tensor bias) {
        if (KERNEL == null) return false;
        long rows = DenseRows.rows(x, weight, bias, ScalarType.BFloat16);
        return rows >= 1 && rows <= MAX_ROWS;
    }

    /** The native call {@link #forward} makes for {@code x}, for a native caller; null where it does not apply. */
    public static RowKernel rowKernel(Tensor x, Tensor weight, Tensor bias) {
        return applies(x, weight, bias) && x.numel() / weight.size(1) <= CALL_ROWS
                ? RowKernel.dense("bt_bf16_rows_linear", weight, bias) : null;
    }

    /** {@code x} [..., in] → [..., out] in bfloat16; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor weight, Tensor bias) {
        return forward(x, weight, bias, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x, Tensor weight, Tensor bias, RowsArgmax.Picks picks) {
        if (!applies(x, weight, bias)) throw new IllegalArgumentException("bf16_rows_linear does not take these tensors");
        return DenseRows.forward("bt_bf16_rows_linear", KERNEL, x, weight, bias, picks);
    }

}
