package org.bloomtune.model;

import org.bloomtune.kernels.Bf16RowsLinear;
import org.bloomtune.kernels.DenseGemm;
import org.bloomtune.kernels.F32RowsLinear;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The word embedding as a floating-point matrix [V, H]. */
public record DenseWordEmbedding(Tensor weight) implements WordEmbedding {

    @Override
    public Tensor lookup(Tensor ids) { return torch.embedding(weight, ids); }

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
