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
 * LLM.int8's epilogue by native/int8_rescale.c: {@code ((float) acc · rowScale) · colScale} from the
 * int32 accumulator straight into float32 or bfloat16, one pass instead of libtorch's four, the same
 * numbers bit for bit. Rows are split over libtorch's thread count. Callers keep the libtorch chain
 * where this does not apply.
 */
public final class Int8Rescale {
    private static final MethodHandle F32 = bind("bt_int8_rescale_f32");
    private static final MethodHandle BF16 = bind("bt_int8_rescale_bf16");

    private Int8Rescale() {}

    /** True for a contiguous CPU int32 {@code acc} [M, N], float32 {@code rowScale} [M, 1] or [M] and {@code colScale} [N], into {@code dtype}. */
    public static boolean applies(Tensor acc, Tensor rowScale, Tensor colScale, ScalarType dtype) {
        if (F32 == null || (dtype.value != ScalarType.Float.value && dtype.value != ScalarType.BFloat16.value)) return false;
        return cpu(acc, ScalarType.Int) && acc.dim() == 2 && cpu(rowScale, ScalarType.Float) && rowScale.numel() == acc.size(0)
                && cpu(colScale, ScalarType.Float) && colScale.dim() == 1 && colScale.size(0) == acc.size(1);
    }

    private static boolean cpu(Tensor t, ScalarType type) {
        return t.scalar_type().value == type.value && t.is_contiguous() && t.is_cpu();
    }

    /** A new [M, N] tensor of {@code dtype}; call only where {@link #applies}. */
    public static Tensor apply(Tensor acc, Tensor rowScale, Tensor colScale, ScalarType dtype) {
        Tensor out = torch.empty(new long[]{acc.size(0), acc.size(1)}, new TensorOptions(dtype), new MemoryFormatOptional());
        into(acc, rowScale, colScale, out);
        return out;
    }

    /** Writes the rescaled [M, N] into {@code out}, contiguous of a dtype where {@link #applies}. */
    public static void into(Tensor acc, Tensor rowScale, Tensor colScale, Tensor out) {
        ScalarType dtype = out.scalar_type();
        if (!applies(acc, rowScale, colScale, dtype) || !out.is_contiguous() || !out.is_cpu()
                || out.dim() != 2 || out.size(0) != acc.size(0) || out.size(1) != acc.size(1)) {
            throw new IllegalArgumentException("int8_rescale does not take these tensors");
        }
        long m = acc.size(0);
        long n = acc.size(1);
        if (m == 0 || n == 0) return;
        boolean bf16 = dtype.value == ScalarType.BFloat16.value;
        int width = bf16 ? 2 : 4;
        MemorySegment a = NativeMemory.of(acc);
        MemorySegment r = NativeMemory.of(rowScale);
        MemorySegment c = NativeMemory.of(colScale);
        MemorySegment o = NativeMemory.of(out);
        MethodHandle kernel = bf16 ? BF16 : F32;
        int parts = RowSplit.parts(m, m * n / (1 << 16));
        RowSplit.run("int8_rescale", m, parts, (from, count) -> {
            kernel.invokeExact(a.asSlice(from * n * 4, count * n * 4),
                r.asSlice(from * 4, count * 4), c, o.asSlice(from * n * width, count * n * width), count, n);
        });
    }

    private static MethodHandle bind(String name) {
        if (!NativeKernels.available()) return null;
        return NativeKernels.bind(name, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    }
}
