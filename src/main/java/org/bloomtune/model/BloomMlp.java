package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** BLOOM's feed-forward: H → 4H, tanh-approximated GELU, 4H → H. */
public record BloomMlp(Linear denseHTo4h, Linear dense4hToH) implements AutoCloseable {

    /** {@code x} [B, T, H] the post-attention layer norm's output; {@code residual} is added. */
    public Tensor forward(Tensor x, Tensor residual) {
        // BLOOM's GELU is 0.5x(1 + tanh(0.79788456·x·(1 + 0.044715x²))): torch's tanh approximation.
        Tensor hidden = torch.gelu(denseHTo4h.forward(x), "tanh");
        return dense4hToH.forward(hidden).add(residual);
    }

    @Override
    public void close() {
        denseHTo4h.close();
        dense4hToH.close();
    }
}
