package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * Internal: the stages of {@link BloomModel#forward} one by one, for the code that must run them
 * separately — the reverse passes (which recompute blocks), the classifier and training heads
 * (which run {@code ln_f} and the lm_head only where needed). Not part of the stable API; an
 * application uses {@code forward}, {@code embed} and the generators. Tensors returned belong to
 * the open scope.
 */
public final class ModelStages {
    private final BloomModel model;

    ModelStages(BloomModel model) {
        this.model = model;
    }

    /** Checks {@code input} and brings it to the model's device and dtype (see {@link PreparedInput}). */
    public PreparedInput prepare(CausalLmInput input, long past) { return model.prepare(input, past); }

    /** Embedding layer norm and every block: the last block's output [B, T, H], before {@code ln_f}. */
    public Tensor lastHidden(PreparedInput in, long queries, KvCache cache) { return model.lastHidden(in, queries, cache); }

    /** {@code word_embeddings_layernorm}: embeddings [B, T, H] → the first block's input. */
    public Tensor embeddingsLayerNorm(Tensor embeds) { return model.embeddingsLayerNorm(embeds); }

    /** ALiBi bias and boolean mask for {@code queries} new positions under the 2-D mask [B, S], with the prefix or null. */
    public AttentionContext attentionContext(Tensor mask, long queries, AttentionPrefix prefix) { return model.attentionContext(mask, queries, prefix); }

    /** The blocks, in order ({@code h.0}, {@code h.1}, ...). */
    public List<BloomBlock> blocks() { return model.blocks(); }

    /** {@code ln_f}: the last block's output [..., H] → the lm_head's input. */
    public Tensor finalNorm(Tensor hidden) { return model.finalNorm(hidden); }

    /** {@code ln_f} then the tied lm_head: [..., H] → logits [..., V]. */
    public Tensor head(Tensor hidden) { return model.head(hidden); }

    /**
     * Frees the buffers this thread keeps for dequantizing int8 weights (none for other models), so
     * a phase without weight products does not carry them into its peak.
     */
    public void releaseScratch() { DequantizeScratch.release(); }

    /** The frozen word embedding [V, H], also the lm_head (owned by the model). */
    public WordEmbedding wordEmbeddings() { return model.wordEmbeddings(); }
}
