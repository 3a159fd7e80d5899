package org.bloomtune.model;

import org.bloomtune.kernels.Bf16Panels;
import org.bloomtune.kernels.RowsArgmax;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The bfloat16 word embedding of an inference-only model ({@link LoadOptions#inferenceOnly}) kept
 * in {@link Bf16Panels}' panels, so that the tied lm_head — most of a small model's bytes, read
 * once per decode step — is read as the blocks' layers are. Looking ids up gathers each row's
 * elements from its panel (a few rows a step); {@link #rows} unpacks a block of the vocabulary.
 */
final class PanelWordEmbedding implements WordEmbedding {
    private final Tensor panels;         // [V, H] in panels
    private final Tensor columns;        // [H] int64: where column c of a row lies from its panel row's start

    PanelWordEmbedding(Tensor weight) {
        this.panels = Bf16Panels.pack(weight);
        this.columns = columnOffsets(weight.size(1));
    }

    /**
     * Where element c of a row of {@code h} lies from the start of its row in the panels: element
     * (t, c) of a matrix in panels of 32 rows and pairs of columns lies at (t / 32) · 32 · H + (c / 2) · 64 + (t % 32) · 2 + c % 2.
     */
    static Tensor columnOffsets(long h) {
        try (Tensor c = torch.arange(new Scalar(h))) {
            return c.floor_divide(new Scalar(2)).mul(new Scalar(2 * Bf16Panels.PANEL)).add(c.remainder(new Scalar(2)));
        }
    }

    /** Where the elements of each row in {@code ids} [...] lie in panels of {@code h} columns: [..., h] int64, for {@code torch.take}. */
    static Tensor rowOffsets(Tensor ids, long h, Tensor columns) {
        try (Tensor panel = ids.floor_divide(new Scalar(Bf16Panels.PANEL)); Tensor within = ids.remainder(new Scalar(Bf16Panels.PANEL));
             Tensor start = panel.mul(new Scalar(Bf16Panels.PANEL * h)).add(within.mul(new Scalar(2))).unsqueeze(-1)) {
            return start.add(columns);
        }
    }

    /** The packed matrix (resident; the model's named weight). */
    Tensor panels() { return panels; }

    @Override
    public Tensor lookup(Tensor ids) {
        try (Tensor at = rowOffsets(ids, panels.size(1), columns)) {
            return torch.take(panels, at);
        }
    }

    @Override
    public Tensor logits(Tensor hidden) {
        try (Tensor in = hidden.contiguous()) {
            return Bf16Panels.forward(in, panels, null);
        }
    }

    @Override
    public Tensor logits(Tensor hidden, RowsArgmax.Picks picks) {
        try (Tensor in = hidden.contiguous()) {
            return Bf16Panels.forward(in, panels, null, picks);
        }
    }

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
        columns.close();
    }
}
