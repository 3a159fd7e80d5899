package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * One batch for the causal LM. Exactly one of {@code inputIds} [B, T] (int64) and
 * {@code inputsEmbeds} [B, T, H] is set; {@code attentionMask} [B, past + T] defaults to all ones;
 * {@code labels} [B, T] (int64, -100 = ignored) asks for the shifted cross-entropy loss. The caller
 * keeps ownership of every tensor given here.
 */
public record CausalLmInput(Tensor inputIds, Tensor inputsEmbeds, Tensor attentionMask, Tensor labels) {

    public CausalLmInput {
        if ((inputIds == null) == (inputsEmbeds == null)) {
            throw new IllegalArgumentException("give exactly one of input_ids and inputs_embeds");
        }
    }

    public static CausalLmInput ids(Tensor inputIds) { return new CausalLmInput(inputIds, null, null, null); }

    public static CausalLmInput embeds(Tensor inputsEmbeds) { return new CausalLmInput(null, inputsEmbeds, null, null); }

    public CausalLmInput mask(Tensor attentionMask) { return new CausalLmInput(inputIds, inputsEmbeds, attentionMask, labels); }

    public CausalLmInput labels(Tensor labels) { return new CausalLmInput(inputIds, inputsEmbeds, attentionMask, labels); }

    public long batchSize() { return (inputIds != null ? inputIds : inputsEmbeds).size(0); }

    public long length() { return (inputIds != null ? inputIds : inputsEmbeds).size(1); }
}
