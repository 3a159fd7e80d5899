package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/** A linear layer with a floating-point weight [out, in] and bias [out]. */
public record DenseLinear(Tensor weight, Tensor bias) implements Linear {

    @Override
    public Tensor forward(Tensor x) {
        return OneRowProduct.linear(x, weight, bias);
    }

    @Override
    public long inFeatures() { return weight.size(1); }

    @Override
    public long outFeatures() { return weight.size(0); }

    @Override
    public long residentBytes() { return weight.nbytes() + bias.nbytes(); }

    @Override
    public void close() {
        weight.close();
        bias.close();
    }
}
