package org.bloomtune.model;

import org.bloomtune.kernels.DenseGemm;
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
    public Tensor rows(long start, long n) { return weight.narrow(0, start, n); }

    @Override
    public boolean rowsAreViews() { return true; }

    @Override
    public long residentBytes() { return weight.nbytes(); }

    @Override
    public void close() { weight.close(); }
}
