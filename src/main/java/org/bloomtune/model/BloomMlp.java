package org.bloomtune.model;

import org.bloomtune.kernels.Gelu;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** BLOOM's feed-forward: H → 4H, tanh-approximated GELU, 4H → H. */
public record BloomMlp(Linear denseHTo4h, Linear dense4hToH) implements AutoCloseable {

    /** {@code x} [B, T, H] the post-attention layer norm's output; {@code residual} is added. */
    public Tensor forward(Tensor x, Tensor residual) {
        Tensor hidden = gelu(denseHTo4h.forward(x));
        return dense4hToH.forward(hidden).add(residual);
    }

    /**
     * BLOOM's GELU, 0.5x(1 + tanh(0.79788456·x·(1 + 0.044715x²))) — torch's tanh approximation — by
     * the native kernel where it takes x (bfloat16): through {@link NativeOpGraph} while a reverse
     * pass records, directly when nothing records; by libtorch otherwise.
     */
    private static Tensor gelu(Tensor h) {
        if (NativeOpGraph.appliesToGelu(h)) return NativeOpGraph.gelu(h);
        if (!NativeOpGraph.records(h) && Gelu.applies(h)) return Gelu.forward(h);
        return torch.gelu(h, "tanh");
    }

    @Override
    public void close() {
        denseHTo4h.close();
        dense4hToH.close();
    }
}
