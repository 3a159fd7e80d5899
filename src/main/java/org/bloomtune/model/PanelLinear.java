package org.bloomtune.model;

import org.bloomtune.kernels.DensePanels;
import org.bloomtune.kernels.RowKernel;
import org.bytedeco.pytorch.Tensor;

/**
 * A bfloat16 or float32 linear layer whose weight is kept in {@link DensePanels}' inference layout instead of
 * row-major: what {@link LoadOptions#inferenceOnly} models load their blocks' layers as. Every
 * product — a prefill's many rows or a decode step's few — goes through the panel kernel; there is
 * no input gradient, so a reverse pass through it is refused.
 */
record PanelLinear(Tensor panels, Tensor bias) implements Linear {

    /** The layer of {@code weight} [out, in] (+ {@code bias} [out]) with the weight packed; the caller closes {@code weight}. */
    static PanelLinear of(Tensor weight, Tensor bias) { return new PanelLinear(DensePanels.pack(weight), bias); }

    @Override
    public Tensor forward(Tensor x) {
        if (x.requires_grad()) throw noReversePass();
        try (Tensor in = x.contiguous()) {
            return DensePanels.forward(in, panels, bias);
        }
    }

    /** What a reverse pass through a layer in panels meets. */
    static IllegalStateException noReversePass() {
        return new IllegalStateException("this model was loaded for inference only (LoadOptions.inferenceOnly): its weights are laid "
                + "out for generation and have no reverse pass; load it without inferenceOnly to train a prompt");
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return DensePanels.rowKernel(x2d, panels, bias); }

    @Override
    public long inFeatures() { return panels.size(1); }

    @Override
    public long outFeatures() { return panels.size(0); }

    @Override
    public long residentBytes() { return panels.nbytes() + bias.nbytes(); }

    @Override
    public void close() {
        panels.close();
        bias.close();
    }
}
