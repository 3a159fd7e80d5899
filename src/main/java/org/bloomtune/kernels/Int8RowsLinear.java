package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * {@code x · (values · scales)ᵀ} for a decode step's few rows of x — the weight-only int8 mode — by
 * native/int8_rows_linear.c (AVX2 + FMA), which reads the int8 weight once for all rows and widens
 * it in registers; the weight's rows are split over libtorch's thread count. Sums are float32; a
 * bfloat16 x is widened first and the result rounded once. Up to {@link #MAX_ROWS} float32 rows
 * (libtorch's {@code _weight_int8pack_mm} has no vectorized float32 path) and
 * {@link #MAX_BF16_ROWS} bfloat16 rows (beyond that its bfloat16 path is faster). Where the CPU
 * lacks AVX2/FMA or the tensors are not contiguous CPU tensors outside autograd, callers keep
 * libtorch's kernels.
 */
public final class Int8RowsLinear {
    /** float32 rows up to which the kernel beats the dequantized GEMM here (benchmarks/FINDINGS.md). */
    public static final int MAX_ROWS = 8;

    /** bfloat16 rows up to which it beats {@code _weight_int8pack_mm} here (benchmarks/FINDINGS.md). */
    public static final int MAX_BF16_ROWS = 2;

    private static final MethodHandle KERNEL = bindIfSupported();

    private Int8RowsLinear() {}

    /** True when this CPU has AVX2 and FMA and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when the kernel takes {@code x2d} [rows, in] times {@code values} [out, in] int8 with {@code scales} [out] float32. */
    public static boolean applies(Tensor x2d, Tensor values, Tensor scales) {
        if (KERNEL == null || x2d.requires_grad() || x2d.dim() != 2 || !x2d.device().is_cpu()) return false;
        int type = x2d.scalar_type().value;
        int maxRows = type == ScalarType.Float.value ? MAX_ROWS : type == ScalarType.BFloat16.value ? MAX_BF16_ROWS : 0;
        if (values.dim() != 2 || values.scalar_type().value != ScalarType.Char.value || !values.is_contiguous() || !values.device().is_cpu()) return false;
        if (scales.dim() != 1 || scales.size(0) != values.size(0) || scales.scalar_type().value != ScalarType.Float.value
                || !scales.is_contiguous() || !scales.device().is_cpu()) return false;
        return values.size(1) == x2d.size(1) && values.size(1) > 0 && x2d.size(0) >= 1 && x2d.size(0) <= maxRows;
    }

    /** {@code x2d} [rows, in] → [rows, out] in x's dtype; call only where {@link #applies}. */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales) {
        if (!applies(x2d, values, scales)) throw new IllegalArgumentException("int8_rows_linear does not take these tensors");
        long n = values.size(0);
        long k = values.size(1);
        long rows = x2d.size(0);
        Tensor x = x2d.to(ScalarType.Float).contiguous();
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.segment(values.data_ptr(), values.nbytes());
        MemorySegment s = NativeMemory.segment(scales.data_ptr(), scales.nbytes());
        MemorySegment in = NativeMemory.segment(x.data_ptr(), x.nbytes());
        MemorySegment out = NativeMemory.segment(y.data_ptr(), y.nbytes());
        int parts = (int) Math.max(1, Math.min(torch.get_num_threads(), n / 256));
        RowSplit.run("bt_int8_rows_linear", n, parts, (from, count) -> {
            KERNEL.invokeExact(w.asSlice(from * k, count * k), s.asSlice(from * 4, count * 4), in, out.asSlice(from * 4), rows, count, k, n);
        });
        return x2d.scalar_type().value == ScalarType.Float.value ? y : y.to(x2d.scalar_type());
    }

    private static MethodHandle bindIfSupported() {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bindIfSupported("bt_int8_rows_supported", "bt_int8_rows_linear", FunctionDescriptor.ofVoid(a, a, a, a, l, l, l, l));
    }
}
