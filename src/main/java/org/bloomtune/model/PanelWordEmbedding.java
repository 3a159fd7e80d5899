package org.bloomtune.model;

import org.bloomtune.kernels.DensePanels;
import org.bloomtune.kernels.RowGather;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The bfloat16 or float32 word embedding of an inference-only model ({@link LoadOptions#inferenceOnly}) kept
 * in {@link DensePanels}' panels, so that the tied lm_head — most of a small model's bytes, read
 * once per decode step — is read as the blocks' layers are. Looking ids up gathers each row's
 * elements from its panel (a few rows a step); {@link #rows} unpacks a block of the vocabulary.
 */
final class PanelWordEmbedding implements WordEmbedding {
    private final Tensor panels;         // [V, H] in panels

    PanelWordEmbedding(Tensor weight) {
        this.panels = DensePanels.pack(weight);
    }

    /** The packed matrix (resident; the model's named weight). */
    Tensor panels() { return panels; }

    @Override
    public Tensor lookup(Tensor ids) {
        return DensePanels.rows(panels, ids);
    }

    @Override
    public RowGather rowGather() { return DensePanels.gather(panels); }

    @Override
    public Tensor logits(Tensor hidden) {
        try (Tensor in = hidden.contiguous()) {
            return DensePanels.forward(in, panels, null);
        }
    }

    @Override
    public Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        try (Tensor in = hidden.contiguous()) {
            return DensePanels.forward(in, panels, null, picks);
        }
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return DensePanels.rowKernel(x2d, panels, null); }

    @Override
    public Tensor rows(long start, long n) {
        try (Tensor ids = torch.arange(new Scalar(start), new Scalar(start + n))) {
            return lookup(ids);
        }
    }

    @Override
    public boolean rowsAreViews() { return false; }

    @Override
    public long residentBytes() { return panels.nbytes(); }

    @Override
    public void close() {
        panels.close();
    }
}
