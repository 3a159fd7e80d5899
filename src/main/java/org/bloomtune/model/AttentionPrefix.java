package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * Prefix tuning's keys and values: N positions ahead of the input in every layer's attention, laid
 * out as PEFT 0.10 hands them to BLOOM ({@code bloom_model_postprocess_past_key_value}). One row of
 * the raw prefix [B, N, 2·L·H] holds layer l's keys in slice l and its values in slice L + l (each
 * H wide), and they go straight into the cache layout — no layer norm, no projection:
 * <ul>
 * <li>value[l][b·heads + h, n, d] = raw[b, n, ((L + l)·heads + h)·head_dim + d], a plain permute;</li>
 * <li>key[l] is <em>not</em> the transpose of that: PEFT swaps heads and N and then reshapes, so
 * slice l of a row, flattened row-major, is read as [heads, head_dim, N].</li>
 * </ul>
 * Slices are taken when a block asks for them, so recomputing one block records only that
 * block's share of the graph back to the prefix.
 *
 * @param raw [B, N, 2·L·H] in the compute dtype (may require grad)
 */
public record AttentionPrefix(Tensor raw, int numLayers, int numHeads) {

    public AttentionPrefix {
        if (raw.dim() != 3 || raw.size(2) % (2L * numLayers) != 0 || raw.size(2) / (2L * numLayers) % numHeads != 0) {
            throw new IllegalArgumentException("a prefix must be [B, N, 2·layers·hidden] for " + numLayers + " layers and "
                    + numHeads + " heads, got " + org.bloomtune.tensor.Tensors.shapeString(raw));
        }
    }

    public long length() { return raw.size(1); }

    private long hidden() { return raw.size(2) / (2L * numLayers); }

    /** Layer {@code layer}'s prefix keys [B·heads, head_dim, N]. */
    public Tensor key(int layer) {
        long batch = raw.size(0);
        long n = raw.size(1);
        long hidden = hidden();
        return raw.narrow(2, layer * hidden, hidden).reshape(batch * numHeads, hidden / numHeads, n);
    }

    /** Layer {@code layer}'s prefix values [B·heads, N, head_dim]. */
    public Tensor value(int layer) {
        long batch = raw.size(0);
        long n = raw.size(1);
        long hidden = hidden();
        return raw.narrow(2, (numLayers + layer) * hidden, hidden).view(batch, n, numHeads, hidden / numHeads)
                .permute(0, 2, 1, 3).reshape(batch * numHeads, n, hidden / numHeads);
    }
}
