package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The call the dense row kernels share ({@code bt_f32_rows_linear}, {@code bt_bf16_rows_linear}: one
 * signature — w, x, bias or NULL, y, rows, n, k, ldy — in the weight's dtype): y = x Wᵀ + b, W's rows
 * split over libtorch's thread count.
 */
final class DenseRows {
    private DenseRows() {}

    /** {@code x} [..., in] → [..., out]; the caller has checked the tensors (contiguous CPU, one dtype). */
    static Tensor forward(String name, MethodHandle kernel, Tensor x, Tensor weight, Tensor bias) {
        long n = weight.size(0);
        long k = weight.size(1);
        long rows = x.numel() / k;
        long element = weight.element_size();
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.segment(weight.data_ptr(), weight.nbytes());
        MemorySegment in = NativeMemory.segment(x.data_ptr(), x.nbytes());
        MemorySegment b = bias == null ? MemorySegment.NULL : NativeMemory.segment(bias.data_ptr(), bias.nbytes());
        MemorySegment out = NativeMemory.segment(y.data_ptr(), y.nbytes());
        RowSplit.overWeightRows(name, n, (from, count) -> {
            MemorySegment bPart = bias == null ? MemorySegment.NULL : b.asSlice(from * element, count * element);
            kernel.invokeExact(w.asSlice(from * k * element, count * k * element), in, bPart, out.asSlice(from * element), rows, count, k, n);
        });
        long[] shape = x.sizes().vec().get();
        shape[shape.length - 1] = n;
        return y.view(shape);
    }
}
