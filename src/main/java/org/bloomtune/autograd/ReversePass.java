package org.bloomtune.autograd;

/**
 * How the soft-prompt gradient is computed: what is kept from the forward pass versus recomputed.
 * Both give the same gradient (to float rounding); they trade speed for memory.
 */
public enum ReversePass {
    /**
     * Path 1: libtorch autograd through the whole model. Every block's activations stay alive
     * until the backward pass: fastest, and memory grows with layers × batch × sequence.
     */
    AUTOGRAD,
    /**
     * Path 2: forward without recording, keeping only each block's input; then, from the top
     * block down, recompute that block with recording on and backpropagate through it alone.
     * Peak memory is the weights, the block inputs, and one block's activations; the price is one
     * extra forward of the blocks.
     */
    RECOMPUTE_BLOCKS,
    /**
     * One of the two, chosen for each run before its first step from the estimated peak of each
     * ({@code train.ReversePassChoice}): AUTOGRAD when it fits the memory budget, else
     * RECOMPUTE_BLOCKS. A training run resolves it; a single backward call needs a concrete pass.
     */
    AUTO;

    /** Parses a flag's value, any case ("auto", "AUTOGRAD", "recompute_blocks"). */
    public static ReversePass parse(String text) {
        for (ReversePass p : values()) if (p.name().equalsIgnoreCase(text.trim())) return p;
        throw new IllegalArgumentException("reverse_pass must be auto, AUTOGRAD or RECOMPUTE_BLOCKS, got '" + text + "'");
    }
}
