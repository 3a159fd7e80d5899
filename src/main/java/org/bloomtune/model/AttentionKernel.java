package org.bloomtune.model;

/**
 * How attention scores become the context: both give HF's result to float rounding.
 */
public enum AttentionKernel {
    /**
     * HF's eager path, op for op: {@code baddbmm} with the ALiBi bias, masked fill, float32
     * softmax, {@code bmm}. Keeps the [B, heads, T, S] probabilities for the backward pass.
     */
    EAGER,
    /**
     * libtorch's fused {@code scaled_dot_product_attention} with ALiBi and the mask folded into one
     * additive bias, built once per forward and shared by every block.
     */
    SDPA;

    public static AttentionKernel parse(String text) {
        for (AttentionKernel k : values()) if (k.name().equalsIgnoreCase(text)) return k;
        throw new IllegalArgumentException("unknown attention kernel '" + text + "' (eager or sdpa)");
    }
}
