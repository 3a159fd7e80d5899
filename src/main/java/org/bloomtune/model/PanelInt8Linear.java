package org.bloomtune.model;

import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.RowKernel;
import org.bytedeco.pytorch.Tensor;

/**
 * A weight-only int8 linear layer with bfloat16 activations whose int8 weight is kept in
 * {@link Int8Bf16Panels}' inference layout: what {@link LoadOptions#inferenceOnly} models load their
 * blocks' layers as in that mode. Every product, a prefill's or a decode step's, goes through the
 * panel kernel; there is no input gradient, so a reverse pass through it is refused.
 */
record PanelInt8Linear(Tensor panels, Tensor scales, Tensor bias) implements Linear {

    /** The layer of {@code weight} (+ {@code bias}) with its values packed; the caller closes {@code weight}'s values. */
    static PanelInt8Linear of(Int8Weight weight, Tensor bias) {
        return new PanelInt8Linear(Int8Bf16Panels.pack(weight.values()), weight.scales(), bias);
    }

    @Override
    public Tensor forward(Tensor x) {
        if (x.requires_grad()) throw PanelLinear.noReversePass();
        try (Tensor in = x.contiguous()) {
            return Int8Bf16Panels.forward(in, panels, scales, bias);
        }
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return Int8Bf16Panels.rowKernel(x2d, panels, scales, bias); }

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
