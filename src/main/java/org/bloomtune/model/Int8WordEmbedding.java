package org.bloomtune.model;

import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The word embedding in int8 with one scale per vocabulary row. Per-row scales are at once the
 * embedding's row scales and the tied lm_head's per-output-channel scales, so one quantized matrix
 * serves both directions.
 */
public final class Int8WordEmbedding implements WordEmbedding {
    private final Int8Weight weight;
    private final Int8Kernel kernel;
    private final ScalarType dtype;

    public Int8WordEmbedding(Int8Weight weight, Int8Kernel kernel, ScalarType dtype) {
        this.weight = weight;
        this.kernel = kernel;
        this.dtype = dtype;
    }

    @Override
    public Tensor lookup(Tensor ids) {
        Tensor rows = torch.embedding(weight.values(), ids).to(dtype);                   // [B, T, H]
        Tensor scales = torch.embedding(weight.scales().unsqueeze(1), ids).to(dtype);    // [B, T, 1]
        return rows.mul(scales);
    }

    @Override
    public Tensor logits(Tensor hidden) {
        return weight.matmul(hidden, kernel, null);
    }

    @Override
    public Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        if (GradMode.is_enabled() && hidden.requires_grad()) return WordEmbedding.super.logits(hidden, picks);
        return kernel.multiplyWithArgmax(hidden.reshape(-1, weight.inFeatures()), weight, picks);
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return kernel.rowKernel(x2d, weight, null); }

    @Override
    public Tensor rows(long start, long n) { return weight.dequantizeRows(start, n, dtype); }

    @Override
    public boolean rowsAreViews() { return false; }

    @Override
    public long residentBytes() { return weight.residentBytes(); }

    @Override
    public void close() { weight.close(); }
}
