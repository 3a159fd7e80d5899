package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * What the dense row kernels share ({@code bt_f32_rows_linear}, {@code bt_bf16_rows_linear}: one
 * signature — w, x, bias or NULL, y, rows, n, k, ldy — in the weight's dtype): the tensor checks,
 * the binding, and the call y = x Wᵀ + b with W's rows split over libtorch's thread count. More
 * rows than one call takes go in groups against each block of a thread's weight rows.
 */
final class DenseRows {
    /** Rows of x one kernel call multiplies: the kernels take one to eight. */
    static final int CALL_ROWS = 8;

    private DenseRows() {}

    /**
     * The rows of {@code x} [..., in] the kernel would multiply by {@code weight} [out, in] (+ {@code bias}
     * [out] or null): contiguous CPU tensors of {@code type} outside autograd with matching shapes; -1 otherwise.
     */
    static long rows(Tensor x, Tensor weight, Tensor bias, ScalarType type) {
        if (x.requires_grad() || weight.requires_grad()) return -1;
        if (!cpu(weight, type) || weight.dim() != 2 || !cpu(x, type) || x.size(-1) != weight.size(1) || weight.size(1) <= 0) return -1;
        if (bias != null && (!cpu(bias, type) || bias.dim() != 1 || bias.size(0) != weight.size(0) || bias.requires_grad())) return -1;
        return x.numel() / weight.size(1);
    }

    private static boolean cpu(Tensor t, ScalarType type) {
        return t.scalar_type().value == type.value && t.is_cpu() && t.is_contiguous();
    }

    /** {@code name} (w, x, bias, y, rows, n, k, ldy) bound where {@code supported} says this CPU runs it; else null. */
    static MethodHandle bindIfSupported(String supported, String name) {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bindIfSupported(supported, name, FunctionDescriptor.ofVoid(a, a, a, a, l, l, l, l));
    }

    /** {@code x} [..., in] → [..., out]; the caller has checked the tensors (contiguous CPU, one dtype). */
    static Tensor forward(String name, MethodHandle kernel, Tensor x, Tensor weight, Tensor bias) {
        return forward(name, kernel, x, weight, bias, null);
    }

    /**
     * {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by
     * the thread that writes it; float32 and bfloat16 outputs only.
     */
    static Tensor forward(String name, MethodHandle kernel, Tensor x, Tensor weight, Tensor bias, RowsArgmax.Picks picks) {
        long n = weight.size(0);
        long k = weight.size(1);
        long rows = x.numel() / k;
        long element = weight.element_size();
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.of(weight);
        MemorySegment in = NativeMemory.of(x);
        MemorySegment b = NativeMemory.ofNullable(bias);
        MemorySegment out = NativeMemory.of(y);
        RowSplit.overWeightRows(name, n, rows, (from, count) -> {
            RowSplit.inGroups(from, count, k * element, rows, CALL_ROWS, (j, nj, r, nr) -> {
                MemorySegment bPart = bias == null ? MemorySegment.NULL : b.asSlice(j * element, nj * element);
                kernel.invokeExact(w.asSlice(j * k * element, nj * k * element), in.asSlice(r * k * element), bPart,
                        out.asSlice((r * n + j) * element), nr, nj, k, n);
            });
            if (picks != null) picks.merge(out, n, from, count, element == 2);
        });
        return y.view(Tensors.shapeWithLast(x, n));
    }
}
