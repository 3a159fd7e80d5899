package org.bloomtune.model;

import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * A frozen linear layer with an int8 weight and a floating-point bias. Without autograd recording
 * it runs the chosen int8 kernel. While recording (the reverse pass recomputing a block) it
 * dequantizes the weight for this call only, so the input gradient flows through the int8 weight
 * and the float copy dies with the block's graph — no float weight outlives its block.
 */
public final class Int8Linear implements Linear {
    private final Int8Weight weight;
    private final Tensor bias;
    private final Int8Options options;

    public Int8Linear(Int8Weight weight, Tensor bias, Int8Options options) {
        this.weight = weight;
        this.bias = bias;
        this.options = options;
    }

    @Override
    public Tensor forward(Tensor x) {
        if (recording(x)) return torch.linear(x, weight.dequantize(x.scalar_type()), new TensorOptional(bias));
        return weight.matmul(x, options).add(bias);
    }

    /** Autograd records this call: grad mode is on and the input carries a gradient. */
    static boolean recording(Tensor x) {
        return GradMode.is_enabled() && x.requires_grad();
    }

    public Int8Weight weight() { return weight; }

    @Override
    public long inFeatures() { return weight.inFeatures(); }

    @Override
    public long outFeatures() { return weight.outFeatures(); }

    @Override
    public long residentBytes() { return weight.residentBytes() + bias.nbytes(); }

    @Override
    public void close() {
        weight.close();
        bias.close();
    }
}
