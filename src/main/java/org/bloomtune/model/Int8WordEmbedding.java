package org.bloomtune.model;

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
    private final Int8Options options;
    private final ScalarType dtype;

    public Int8WordEmbedding(Int8Weight weight, Int8Options options, ScalarType dtype) {
        this.weight = weight;
        this.options = options;
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
        // Recording: dequantize for this call only (see Int8Linear).
        if (Int8Linear.recording(hidden)) return torch.linear(hidden, weight.dequantize(hidden.scalar_type()));
        return weight.matmul(hidden, options);
    }

    /**
     * Dequantizes a block of vocabulary rows at a time: the whole matrix in float would be 2 GB
     * for bloom-1b4-zh — as much as the int8 model itself.
     */
    @Override
    public Tensor inputGrad(Tensor gradLogits) {
        long vocab = weight.outFeatures();
        Tensor grad = null;
        for (long start = 0; start < vocab; start += VOCAB_BLOCK) {
            long n = Math.min(VOCAB_BLOCK, vocab - start);
            Tensor part = gradLogits.narrow(1, start, n).to(dtype).matmul(weight.dequantizeRows(start, n, dtype));
            grad = grad == null ? part : grad.add_(part);
        }
        return grad;
    }

    /** Vocabulary rows dequantized at once by {@link #inputGrad}. */
    static final long VOCAB_BLOCK = 8192;

    @Override
    public long residentBytes() { return weight.residentBytes(); }

    @Override
    public void close() { weight.close(); }
}
