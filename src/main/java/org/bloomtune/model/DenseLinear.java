package org.bloomtune.model;

import org.bloomtune.kernels.Bf16RowsLinear;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** A linear layer with a floating-point weight [out, in] and bias [out]. */
public record DenseLinear(Tensor weight, Tensor bias) implements Linear {

    @Override
    public Tensor forward(Tensor x) {
        if (OneRowProduct.applies(x, weight)) return OneRowProduct.forward(x, weight, bias);
        if (Bf16RowsLinear.applies(x, weight, bias)) return Bf16RowsLinear.forward(x, weight, bias);
        return torch.linear(x, weight, new TensorOptional(bias));
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
