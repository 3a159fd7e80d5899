package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Row-scaled int8 weights back to float32 or bfloat16 ({@code values · scales[row]}) by
 * native/int8_dequantize.c, the rows split over libtorch's thread count — the same numbers as
 * libtorch's {@code values.to(dtype).mul_(scales)}, whose int8 conversion is many times slower.
 * Callers keep the libtorch chain where this does not apply (other dtypes, CUDA, no kernels built).
 */
public final class Int8Dequantize {
    private static final MethodHandle F32 = bind("bt_int8_dequantize_f32");
    private static final MethodHandle BF16 = bind("bt_int8_dequantize_bf16");

    private Int8Dequantize() {}

    /** True when the kernel takes int8 {@code values} [rows, k] and float32 {@code scales} [rows] into {@code dtype}. */
    public static boolean applies(Tensor values, Tensor scales, ScalarType dtype) {
        if (F32 == null || (dtype.value != ScalarType.Float.value && dtype.value != ScalarType.BFloat16.value)) return false;
        return values.scalar_type().value == ScalarType.Char.value && values.dim() == 2 && values.is_contiguous() && values.is_cpu()
                && scales.scalar_type().value == ScalarType.Float.value && scales.dim() == 1 && scales.size(0) == values.size(0)
                && scales.is_contiguous() && scales.is_cpu();
    }

    /** {@code values} [rows, k] int8 times {@code scales} [rows] → a new [rows, k] tensor of {@code dtype}; call only where {@link #applies}. */
    public static Tensor dequantize(Tensor values, Tensor scales, ScalarType dtype) {
        if (!applies(values, scales, dtype)) throw new IllegalArgumentException("int8_dequantize does not take these tensors");
        return into(values, scales, torch.empty(new long[]{values.size(0), values.size(1)}, new TensorOptions(dtype), new MemoryFormatOptional()));
    }

    /**
     * The same into {@code out} (contiguous CPU [rows, k] of float32 or bfloat16, e.g. a reused
     * buffer: a fresh multi-megabyte allocation costs more in first-touch page faults than the
     * conversion itself on the machines measured). Returns {@code out}.
     */
    public static Tensor into(Tensor values, Tensor scales, Tensor out) {
        ScalarType dtype = out.scalar_type();
        if (!applies(values, scales, dtype) || !out.is_contiguous() || !out.is_cpu() || out.dim() != 2
                || out.size(0) != values.size(0) || out.size(1) != values.size(1)) {
            throw new IllegalArgumentException("int8_dequantize does not take these tensors");
        }
        long rows = values.size(0);
        long k = values.size(1);
        boolean bf16 = dtype.value == ScalarType.BFloat16.value;
        if (rows == 0 || k == 0) return out;
        int width = bf16 ? 2 : 4;
        MemorySegment v = NativeMemory.of(values);
        MemorySegment s = NativeMemory.of(scales);
        MemorySegment o = NativeMemory.of(out);
        MethodHandle kernel = bf16 ? BF16 : F32;
        int parts = RowSplit.parts(rows, rows * k / (1 << 16));
        RowSplit.run("int8_dequantize", rows, parts, (from, count) -> {
            kernel.invokeExact(v.asSlice(from * k, count * k),
                s.asSlice(from * 4, count * 4), o.asSlice(from * k * width, count * k * width), count, k);
        });
        return out;
    }

    private static MethodHandle bind(String name) {
        if (!NativeKernels.available()) return null;
        return NativeKernels.bind(name, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    }
}
