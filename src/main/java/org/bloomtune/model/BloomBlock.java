package org.bloomtune.model;

import org.bloomtune.tensor.Scopes;
import org.bytedeco.pytorch.Tensor;

/** One transformer block: x + attn(ln(x)), then x + mlp(ln(x)) (pre-norm residuals). */
public final class BloomBlock implements AutoCloseable {
    private final LayerNorm inputLayernorm;
    private final BloomAttention selfAttention;
    private final LayerNorm postAttentionLayernorm;
    private final BloomMlp mlp;
    private final boolean residualFromLayernorm;

    public BloomBlock(LayerNorm inputLayernorm, BloomAttention selfAttention,
                      LayerNorm postAttentionLayernorm, BloomMlp mlp, boolean residualFromLayernorm) {
        this.inputLayernorm = inputLayernorm;
        this.selfAttention = selfAttention;
        this.postAttentionLayernorm = postAttentionLayernorm;
        this.mlp = mlp;
        this.residualFromLayernorm = residualFromLayernorm;
    }

    /** {@code hidden} [B, T, H] → [B, T, H]; {@code cache} may be null. */
    public Tensor forward(Tensor hidden, AttentionContext ctx, KvCache cache, int layer) {
        // Each half in a scope of its own: its intermediates (and LLM.int8's) are freed before the
        // next half runs, not when the block returns — a third less peak memory per block.
        Tensor attended = Scopes.inner(() -> {
            Tensor normed = inputLayernorm.forward(hidden);
            return selfAttention.forward(normed, residualFromLayernorm ? normed : hidden, ctx, cache, layer);
        });
        return Scopes.inner(() -> {
            Tensor normed = postAttentionLayernorm.forward(attended);
            return mlp.forward(normed, residualFromLayernorm ? normed : attended);
        });
    }

    public LayerNorm inputLayernorm() { return inputLayernorm; }

    public BloomAttention selfAttention() { return selfAttention; }

    public LayerNorm postAttentionLayernorm() { return postAttentionLayernorm; }

    /** BLOOM's {@code apply_residual_connection_post_layernorm}: the residuals are the layer norms' outputs. */
    public boolean residualFromLayernorm() { return residualFromLayernorm; }

    public BloomMlp mlp() { return mlp; }

    @Override
    public void close() {
        inputLayernorm.close();
        selfAttention.close();
        postAttentionLayernorm.close();
        mlp.close();
    }
}
