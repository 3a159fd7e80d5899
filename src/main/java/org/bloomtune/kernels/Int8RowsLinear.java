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
 * {@code x · (values · scales)ᵀ} for at most {@link #MAX_ROWS} rows of float32 x — a weight-only
 * int8 decode step with float32 activations — by native/int8_rows_linear.c (AVX2 + FMA), which
 * reads the int8 weight once for all rows and widens it in registers; the weight's rows are split
 * over libtorch's thread count. (With bfloat16 activations libtorch's {@code _weight_int8pack_mm}
 * measured faster, so it keeps those.) Where the CPU lacks AVX2/FMA or the tensors are not
 * contiguous CPU tensors outside autograd, callers keep libtorch's kernels.
 */
public final class Int8RowsLinear {
    /** Rows up to which the kernel beats the alternatives here (benchmarks/FINDINGS.md). */
    public static final int MAX_ROWS = 8;

    private static final MethodHandle KERNEL = bindIfSupported();

    private Int8RowsLinear() {}

    /** True when this CPU has AVX2 and FMA and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when the kernel takes {@code x2d} [rows, in] times {@code values} [out, in] int8 with {@code scales} [out] float32. */
    public static boolean applies(Tensor x2d, Tensor values, Tensor scales) {
        if (KERNEL == null || x2d.requires_grad() || x2d.dim() != 2 || !x2d.device().is_cpu()) return false;
        if (x2d.scalar_type().value != ScalarType.Float.value) return false;
        if (values.dim() != 2 || values.scalar_type().value != ScalarType.Char.value || !values.is_contiguous() || !values.device().is_cpu()) return false;
        if (scales.dim() != 1 || scales.size(0) != values.size(0) || scales.scalar_type().value != ScalarType.Float.value
                || !scales.is_contiguous() || !scales.device().is_cpu()) return false;
        return values.size(1) == x2d.size(1) && values.size(1) > 0 && x2d.size(0) >= 1 && x2d.size(0) <= MAX_ROWS;
    }

    /** {@code x2d} [rows, in] → [rows, out] float32; call only where {@link #applies}. */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales) {
        if (!applies(x2d, values, scales)) throw new IllegalArgumentException("int8_rows_linear does not take these tensors");
        long n = values.size(0);
        long k = values.size(1);
        long rows = x2d.size(0);
        Tensor x = x2d.contiguous();
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.segment(values.data_ptr(), values.nbytes());
        MemorySegment s = NativeMemory.segment(scales.data_ptr(), scales.nbytes());
        MemorySegment in = NativeMemory.segment(x.data_ptr(), x.nbytes());
        MemorySegment out = NativeMemory.segment(y.data_ptr(), y.nbytes());
        int parts = (int) Math.max(1, Math.min(torch.get_num_threads(), n / 256));
        RowSplit.run("bt_int8_rows_linear", n, parts, (from, count) -> {
            KERNEL.invokeExact(w.asSlice(from * k, count * k), s.asSlice(from * 4, count * 4), in, out.asSlice(from * 4), rows, count, k, n);
        });
        return y;
    }

    private static MethodHandle bindIfSupported() {
        if (!NativeKernels.available()) return null;
        try {
            int supported = (int) NativeKernels.bind("bt_int8_rows_supported", FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact();
            if (supported == 0) return null;
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_int8_rows_supported failed", t);
        }
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bind("bt_int8_rows_linear", FunctionDescriptor.ofVoid(a, a, a, a, l, l, l, l));
    }
}
