package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * One batch for the causal LM. Exactly one of {@code inputIds} [B, T] (int64) and
 * {@code inputsEmbeds} [B, T, H] is set; {@code attentionMask} [B, past + N + T] defaults to all
 * ones (0 = padding, 1 = a token; BloomTune also reads k ≥ 2 as record k of a packed row, see
 * {@link PackedMask}); {@code labels} [B, T] (int64, -100 = ignored) asks for the shifted cross-entropy loss;
 * {@code prefix} [B, N, 2·layers·H] (prefix tuning, see {@link AttentionPrefix}) puts N key/value
 * positions ahead of the input in every layer. The caller keeps ownership of every tensor given here.
 */
public record CausalLmInput(Tensor inputIds, Tensor inputsEmbeds, Tensor attentionMask, Tensor labels, Tensor prefix) {

    public CausalLmInput {
        if ((inputIds == null) == (inputsEmbeds == null)) {
            throw new IllegalArgumentException("give exactly one of input_ids and inputs_embeds");
        }
    }

    public static CausalLmInput ids(Tensor inputIds) { return new CausalLmInput(inputIds, null, null, null, null); }

    public static CausalLmInput embeds(Tensor inputsEmbeds) { return new CausalLmInput(null, inputsEmbeds, null, null, null); }

    public CausalLmInput mask(Tensor attentionMask) { return new CausalLmInput(inputIds, inputsEmbeds, attentionMask, labels, prefix); }

    public CausalLmInput labels(Tensor labels) { return new CausalLmInput(inputIds, inputsEmbeds, attentionMask, labels, prefix); }

    /** With prefix tuning's keys and values [B, N, 2·layers·H] ahead of the input. */
    public CausalLmInput prefix(Tensor prefix) { return new CausalLmInput(inputIds, inputsEmbeds, attentionMask, labels, prefix); }

    public long batchSize() { return (inputIds != null ? inputIds : inputsEmbeds).size(0); }

    public long length() { return (inputIds != null ? inputIds : inputsEmbeds).size(1); }

    /** Positions the prefix adds to every layer's keys (0 without one). */
    public long prefixLength() { return prefix == null ? 0 : prefix.size(1); }
}
