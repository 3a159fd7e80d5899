package org.bloomtune.model;

import org.bloomtune.kernels.Bf16RowsLinear;
import org.bloomtune.kernels.DenseGemm;
import org.bloomtune.kernels.F32RowsLinear;
import org.bloomtune.kernels.RowGather;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The word embedding as a floating-point matrix [V, H]. */
public record DenseWordEmbedding(Tensor weight) implements WordEmbedding {

    @Override
    public Tensor lookup(Tensor ids) { return torch.embedding(weight, ids); }

    /** {@link #lookup}'s rows copied out of the weight's memory, where it is one contiguous CPU matrix. */
    @Override
    public RowGather rowGather() {
        if (!weight.is_cpu() || !weight.is_contiguous() || weight.dim() != 2 || weight.requires_grad()) return null;
        MemorySegment matrix = NativeMemory.of(weight);
        long rowBytes = weight.size(1) * weight.element_size();
        return (ids, count, out) -> {
            for (long i = 0; i < count; i++) {
                MemorySegment.copy(matrix, ids.getAtIndex(ValueLayout.JAVA_LONG, i) * rowBytes, out, i * rowBytes, rowBytes);
            }
        };
    }

    /** The tied lm_head: many rows (a forward's every position) by the native GEMM of the weight's dtype, a decode step's few by the row kernels. */
    @Override
    public Tensor logits(Tensor hidden) {
        if (DenseGemm.appliesToLinear(hidden, weight, null)) return DenseGemm.linear(hidden, weight, null);
        return OneRowProduct.linear(hidden, weight, null);
    }

    @Override
    public Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        return OneRowProduct.linear(hidden, weight, null, picks);
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) {
        RowKernel f32 = F32RowsLinear.rowKernel(x2d, weight, null);
        return f32 != null ? f32 : Bf16RowsLinear.rowKernel(x2d, weight, null);
    }

    @Override
    public Tensor rows(long start, long n) { return weight.narrow(0, start, n); }

    @Override
    public boolean rowsAreViews() { return true; }

    @Override
    public long residentBytes() { return weight.nbytes(); }

    @Override
    public void close() { weight.close(); }
}
