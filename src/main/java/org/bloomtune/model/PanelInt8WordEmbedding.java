package org.bloomtune.model;

import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The weight-only int8 word embedding of an inference-only bfloat16 model ({@link LoadOptions#inferenceOnly})
 * with its values in {@link Int8Bf16Panels}' panels, so the tied lm_head is read as the blocks'
 * layers are. Lookups gather each row's bytes from its panel and scale them as
 * {@link Int8WordEmbedding} does; logits go through the panel kernel.
 */
final class PanelInt8WordEmbedding implements WordEmbedding {
    private final Tensor panels;         // [V, H] int8 in panels
    private final Tensor scales;         // [V] float32

    PanelInt8WordEmbedding(Int8Weight weight) {
        this.panels = Int8Bf16Panels.pack(weight.values());
        this.scales = weight.scales();
    }

    /** The packed values (resident; the model's named weight). */
    Tensor panels() { return panels; }

    private Tensor values(Tensor ids) {
        return Int8Bf16Panels.values(panels, ids);
    }

    @Override
    public Tensor lookup(Tensor ids) {
        return Int8Bf16Panels.rows(panels, scales, ids);
    }

    @Override
    public Tensor logits(Tensor hidden) {
        try (Tensor in = hidden.contiguous()) {
            return Int8Bf16Panels.forward(in, panels, scales, null);
        }
    }

    @Override
    public Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        try (Tensor in = hidden.contiguous()) {
            return Int8Bf16Panels.forward(in, panels, scales, null, picks);
        }
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return Int8Bf16Panels.rowKernel(x2d, panels, scales, null); }

    /** The rows gathered from their panels, dequantized by {@link Int8Weight#dequantizeRows} as the row-major embedding's are. */
    @Override
    public Tensor rows(long start, long n) {
        try (Tensor ids = torch.arange(new Scalar(start), new Scalar(start + n)); Tensor v = values(ids); Tensor s = scales.narrow(0, start, n)) {
            return new Int8Weight(v, s).dequantizeRows(0, n, ScalarType.BFloat16);
        }
    }

    @Override
    public boolean rowsAreViews() { return false; }

    @Override
    public long residentBytes() { return panels.nbytes() + scales.nbytes(); }

    @Override
    public void close() {
        panels.close();
        scales.close();
    }
}
