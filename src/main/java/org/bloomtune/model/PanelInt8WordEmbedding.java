package org.bloomtune.model;

import org.bloomtune.kernels.RowGather;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The int8 word embedding of an inference-only model ({@link LoadOptions#inferenceOnly}) with its
 * values in an {@link Int8Panels} layout, so the tied lm_head is read as the blocks' layers are.
 * Lookups gather each row's bytes from its panel and scale them as {@link Int8WordEmbedding} does;
 * logits go through the panel kernel.
 */
final class PanelInt8WordEmbedding implements WordEmbedding {
    private final Tensor panels;         // [V, H] int8 in panels
    private final Tensor scales;         // [V] float32
    private final Int8Panels layout;

    PanelInt8WordEmbedding(Int8Weight weight, Int8Panels layout) {
        this.panels = layout.pack(weight.values());
        this.scales = weight.scales();
        this.layout = layout;
    }

    /** The packed values (resident; the model's named weight). */
    Tensor panels() { return panels; }

    @Override
    public Tensor lookup(Tensor ids) {
        return layout.lookup(panels, scales, ids);
    }

    @Override
    public RowGather rowGather() { return layout.gather(panels, scales); }

    @Override
    public Tensor logits(Tensor hidden) {
        return logits(hidden, null);
    }

    @Override
    public Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        try (Tensor in = hidden.contiguous()) {
            return layout.forward(in, panels, scales, null, picks);
        }
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return layout.rowKernel(x2d, panels, scales, null); }

    /** The rows gathered from their panels, dequantized by {@link Int8Weight#dequantizeRows} as the row-major embedding's are. */
    @Override
    public Tensor rows(long start, long n) {
        try (Tensor ids = torch.arange(new Scalar(start), new Scalar(start + n)); Tensor v = layout.values(panels, ids);
             Tensor s = scales.narrow(0, start, n)) {
            return new Int8Weight(v, s).dequantizeRows(0, n, layout.dtype());
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
