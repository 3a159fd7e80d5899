package org.bloomtune.model;

import org.bloomtune.kernels.RowKernel;
import org.bytedeco.pytorch.Tensor;

/**
 * An int8 linear layer whose values are kept in an {@link Int8Panels} layout — weight-only int8 with
 * bfloat16 activations, or LLM.int8 — what {@link LoadOptions#inferenceOnly} models load their blocks'
 * layers as in those modes. Every product, a prefill's or a decode step's, goes through the panel
 * kernel; there is no input gradient, so a reverse pass through it is refused.
 */
record PanelInt8Linear(Tensor panels, Tensor scales, Tensor bias, Int8Panels layout) implements Linear {

    /** The layer of {@code weight} (+ {@code bias}) with its values packed; the caller closes {@code weight}'s values. */
    static PanelInt8Linear of(Int8Weight weight, Tensor bias, Int8Panels layout) {
        return new PanelInt8Linear(layout.pack(weight.values()), weight.scales(), bias, layout);
    }

    @Override
    public Tensor forward(Tensor x) {
        if (x.requires_grad()) throw PanelLinear.noReversePass();
        try (Tensor in = x.contiguous()) {
            return layout.forward(in, panels, scales, bias, null);
        }
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return layout.rowKernel(x2d, panels, scales, bias); }

    @Override
    public long inFeatures() { return panels.size(1); }

    @Override
    public long outFeatures() { return panels.size(0); }

    @Override
    public long residentBytes() { return panels.nbytes() + scales.nbytes() + bias.nbytes(); }

    @Override
    public void close() {
        panels.close();
        scales.close();
        bias.close();
    }
}
