package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** Layer norm over the last (hidden) axis, with learned weight and bias. */
public record LayerNorm(Tensor weight, Tensor bias, double eps) implements AutoCloseable {

    public Tensor forward(Tensor x) {
        long[] normalized = {weight.size(0)};
        return torch.layer_norm(x, normalized, new TensorOptional(weight), new TensorOptional(bias), eps, false);
    }

    @Override
    public void close() {
        weight.close();
        bias.close();
    }
}
