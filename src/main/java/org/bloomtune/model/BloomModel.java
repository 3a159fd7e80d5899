package org.bloomtune.model;

import org.bloomtune.tensor.LibTorch;
import org.bloomtune.io.WeightSource;
import org.bloomtune.tensor.DType;
import org.bloomtune.kernels.RowsArgmax;
import org.bloomtune.kernels.SerialOps;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * BLOOM for causal language modelling, as HF's {@code BloomForCausalLM}: word embedding →
 * {@code word_embeddings_layernorm} → blocks → {@code ln_f} → lm_head tied to the word embedding.
 * The model owns its weights (and the mapped file they may view) until {@link #close}. Every call
 * releases its temporaries before returning; results belong to the caller.
 */
public final class BloomModel implements AutoCloseable {
    static {
        LibTorch.init();
    }

    private final BloomConfig config;
    private final LoadOptions options;
    private final DType dtype;
    private final Device device;
    private final WordEmbedding wordEmbeddings;          // [V, H], also the lm_head
    private final LayerNorm wordEmbeddingsLayernorm;
    private final List<BloomBlock> h;
    private final LayerNorm lnF;
    private final Map<String, Tensor> namedWeights;      // HF names without prefix → the tensors above
    private final WeightSource mappedWeights;            // null when no weight views a mapping
    private final ModelStages stages = new ModelStages(this);
    private final DecodeBlocks decodeBlocks;

    BloomModel(BloomConfig config, LoadOptions options, Device device, WordEmbedding wordEmbeddings,
               LayerNorm wordEmbeddingsLayernorm, List<BloomBlock> h, LayerNorm lnF,
               Map<String, Tensor> namedWeights, WeightSource mappedWeights) {
        this.config = config;
        this.options = options;
        this.dtype = options.dtype();
        this.device = device;
        this.wordEmbeddings = wordEmbeddings;
        this.wordEmbeddingsLayernorm = wordEmbeddingsLayernorm;
        this.h = List.copyOf(h);
        this.lnF = lnF;
        this.namedWeights = Collections.unmodifiableMap(new LinkedHashMap<>(namedWeights));
        this.mappedWeights = mappedWeights;
        this.decodeBlocks = new DecodeBlocks(config, this.h, lnF, wordEmbeddings);
    }

    /** Loads a HuggingFace BLOOM directory in fp32 on the CPU. */
    public static BloomModel load(Path dir) { return load(dir, LoadOptions.defaults()); }

    public static BloomModel load(Path dir, LoadOptions options) { return BloomLoader.load(dir, options); }

    /**
     * Loads a model directory, or a hub id such as {@code "Langboat/bloom-1b4-zh"} at its main
     * revision through the Hugging Face cache that Python shares (HF_HUB_CACHE, HF_HOME, HF_ENDPOINT,
     * HF_TOKEN, HF_HUB_OFFLINE as huggingface_hub reads them), downloading what the cache lacks.
     */
    public static BloomModel fromPretrained(String dirOrRepoId, LoadOptions options) {
        return load(org.bloomtune.hub.ModelLocation.resolve(dirOrRepoId, null, org.bloomtune.hub.HubOptions.fromEnvironment(), System.err), options);
    }

    public BloomConfig config() { return config; }

    /** How the weights were placed: compute dtype, device, 8-bit mode. */
    public LoadOptions options() { return options; }

    public DType dtype() { return dtype; }

    public Device device() { return device; }

    List<BloomBlock> blocks() { return h; }

    /** Turns the native decode step ({@link DecodeBlocks}) off or on: tests compare it with the blocks run one by one. */
    void nativeDecodeBlocks(boolean on) { decodeBlocks.enable(on); }

    /** Decode steps the native path ran so far. */
    long nativeDecodeSteps() { return decodeBlocks.steps(); }

    /** Of {@link #nativeDecodeSteps}, those that went on through the lm_head to the argmax (tests check it ran). */
    long nativeArgmaxSteps() { return decodeBlocks.argmaxSteps(); }

    /** How attention runs (as HF's {@code attn_implementation}), chosen at load. */
    public AttentionKernel attention() { return options.attention(); }

    /**
     * Every backbone tensor by its HF name without prefix ({@code h.0.mlp.dense_h_to_4h.weight}),
     * for inspection; the model owns them. The tied lm_head is {@code word_embeddings.weight}.
     */
    public Map<String, Tensor> namedWeights() { return namedWeights; }

    /** Internal: the forward's stages one by one, for the reverse passes and heads (see {@link ModelStages}). */
    public ModelStages stages() { return stages; }

    /** Elements in all backbone tensors (the tied lm_head counted once). */
    public long parameterCount() {
        return namedWeights.values().stream().mapToLong(Tensor::numel).sum();
    }

    /** True when the weights are zero-copy views of the memory-mapped checkpoint. */
    public boolean viewsMappedFile() { return mappedWeights != null; }

    /** The frozen word embedding [V, H], also the lm_head (owned by the model). */
    WordEmbedding wordEmbeddings() { return wordEmbeddings; }

    /** Bytes of all weights the model keeps resident (int8 values and their scales included). */
    public long residentWeightBytes() {
        return namedWeights.values().stream().mapToLong(Tensor::nbytes).sum();
    }

    public CausalLmOutput forward(CausalLmInput input) { return forward(input, null); }

    /**
     * Runs the model on {@code input}. With a cache, the new positions follow the cached ones, the
     * attention mask must cover both ({@code [B, past + T]}), and the cache is extended.
     */
    public CausalLmOutput forward(CausalLmInput input, KvCache cache) {
        try (PointerScope scope = new PointerScope()) {
            PreparedInput in = prepare(input, cache == null ? 0 : cache.length());
            Tensor logits = head(lastHidden(in, input.length(), cache));
            Tensor loss = in.labels() == null ? null : CausalLmLoss.mean(logits, in.labels());
            if (cache != null) cache.advance(input.prefixLength() + input.length());
            return new CausalLmOutput(Tensors.escape(logits), loss == null ? null : Tensors.escape(loss));
        }
    }

    /**
     * The logits of each row's last position only, [B, V] — what decoding needs, without the
     * [B, T, V] logits of a whole prefill. Rows must be left-padded so their last token is the last
     * column. Extends {@code cache} as {@link #forward(CausalLmInput, KvCache)} does.
     */
    public Tensor nextTokenLogits(CausalLmInput input, KvCache cache) {
        try (PointerScope scope = new PointerScope(); SerialOps serial = smallDecodeStep(input) ? SerialOps.open() : null) {
            PreparedInput in = prepare(input, cache == null ? 0 : cache.length());
            Tensor logits = lastLogits(lastHidden(in, input.length(), cache), null);
            if (cache != null) cache.advance(input.prefixLength() + input.length());
            return Tensors.escape(logits);
        }
    }

    /**
     * Each row's greedy next token: the argmax of {@link #nextTokenLogits}'s logits with
     * torch.argmax's rules, taken by the lm_head's threads as they write the logits (where its
     * kernel takes it) rather than read back afterwards — in a decode step's one native call with
     * the blocks where that applies ({@link DecodeBlocks#argmax}). Extends {@code cache} the same way.
     */
    public long[] nextTokenArgmax(CausalLmInput input, KvCache cache) {
        try (PointerScope scope = new PointerScope(); SerialOps serial = smallDecodeStep(input) ? SerialOps.open() : null) {
            PreparedInput in = prepare(input, cache == null ? 0 : cache.length());
            Tensor hidden = embeddingsLayerNorm(in.embeds());
            AttentionContext ctx = contextWithoutAdditive(in.mask(), input.length(), in.prefix());
            long[] picked = input.length() == 1 ? decodeBlocks.argmax(hidden, ctx, cache) : null;
            if (picked == null) {
                try (RowsArgmax.Picks picks = new RowsArgmax.Picks(input.batchSize())) {
                    lastLogits(blocks(hidden, ctx, cache, input.length()), picks);
                    picked = picks.indices();
                }
            }
            if (cache != null) cache.advance(input.prefixLength() + input.length());
            return picked;
        }
    }

    /**
     * Greedy decoding's steps after a prefill into {@code cache}, each step's input kept in native
     * memory ({@link GreedySteps}): {@code mask} holds the prefill's 2-D attention mask's values
     * [rows, columns] row-major, one column per cached position, and the session takes steps up to
     * {@code maxPositions} keys. Null where the native decode step, its head or the word
     * embedding's gather does not apply here (SDPA, a device, more than
     * {@link org.bloomtune.kernels.DecodeBlocksKernel#MAX_ROWS} rows, a row-major int8 embedding, a packed mask): the
     * caller then steps through {@link #nextTokenArgmax}.
     */
    public GreedySteps greedySteps(KvCache cache, long[] mask, int rows, long columns, long maxPositions) {
        boolean bf16 = dtype.scalarType() == ScalarType.BFloat16;
        if (attention() != AttentionKernel.EAGER || !device.is_cpu() || (!bf16 && dtype.scalarType() != ScalarType.Float)) return null;
        return GreedySteps.open(config, decodeBlocks, wordEmbeddings, wordEmbeddingsLayernorm, bf16, cache, mask, rows, columns, maxPositions);
    }

    /** ln_f and the lm_head at the last position of {@code hidden} [B, T, H]: logits [B, V], merged into {@code picks} as the lm_head writes them when picks is not null. */
    private Tensor lastLogits(Tensor hidden, RowsArgmax.Picks picks) {
        Tensor normed = finalNorm(hidden.select(1, hidden.size(1) - 1));
        return picks == null ? lmHead(normed) : wordEmbeddings.logits(normed, picks);
    }

    /**
     * A decode step of a few rows whose attention is the native kernel's: its libtorch ops (layer
     * norms, GELU, adds) cost less on this thread than waking libtorch's pool. Not with libtorch's
     * attention (SDPA, a prefix), whose work grows with the cache.
     */
    private boolean smallDecodeStep(CausalLmInput input) {
        return input.length() == 1 && input.batchSize() <= SerialOps.MAX_ROWS && input.prefix() == null && attention() == AttentionKernel.EAGER;
    }

    /**
     * Embedding layer norm and every block: the last block's output [B, T, H], before {@code ln_f}.
     * Recorded for autograd when grad mode is on and the embeddings require a gradient. The result
     * belongs to the open scope.
     */
    Tensor lastHidden(PreparedInput in, long queries, KvCache cache) {
        return blocks(embeddingsLayerNorm(in.embeds()), contextWithoutAdditive(in.mask(), queries, in.prefix()), cache, queries);
    }

    /**
     * Every block over the embeddings' layer norm {@code hidden} [B, T, H] for {@code queries} new
     * positions: {@link #lastHidden}'s result. {@code ctx} may lack the additive bias (the native
     * decode step reads only ALiBi and the mask); the blocks run one by one get it.
     */
    private Tensor blocks(Tensor hidden, AttentionContext ctx, KvCache cache, long queries) {
        Tensor decoded = queries == 1 ? decodeBlocks.forward(hidden, ctx, cache) : null;
        if (decoded != null) return decoded;
        AttentionContext complete = withAdditive(ctx);
        for (int i = 0; i < h.size(); i++) {
            Tensor next = block(i, hidden, complete, cache);
            hidden.close();          // autograd keeps what it needs; the handle need not live until the scope ends
            hidden = next;
        }
        return hidden;
    }

    /**
     * Checks {@code input} and brings it to the model's device and dtype: embeddings [B, T, H]
     * (looked up when ids are given), mask [B, past + T] int64 (all ones when absent), labels [B, T]
     * int64 or null. The tensors belong to the open scope.
     */
    PreparedInput prepare(CausalLmInput input, long past) {
        Tensor embeds = input.inputIds() != null ? embed(input.inputIds()) : toCompute(input.inputsEmbeds());
        return new PreparedInput(embeds, attentionMask(input, past), input.labels() == null ? null : labels(input), prefix(input, past));
    }

    /** Prefix tuning's keys and values in the compute dtype, or null; a prefix comes first, so the cache must be empty. */
    private AttentionPrefix prefix(CausalLmInput input, long past) {
        Tensor raw = input.prefix();
        if (raw == null) return null;
        long width = config.prefixWidth();
        if (raw.dim() != 3 || raw.size(0) != input.batchSize() || raw.size(1) < 1 || raw.size(2) != width) {
            throw new IllegalArgumentException("a prefix must be [" + input.batchSize() + ", N, " + width + "] (2 · layers · hidden), got "
                    + Tensors.shapeString(raw));
        }
        if (past != 0) throw new IllegalArgumentException("a prefix goes ahead of every position: give it with an empty KV cache, not after " + past);
        return new AttentionPrefix(raw.to(device, dtype.scalarType()), config.numLayers(), config.numHeads());
    }

    /** {@code word_embeddings_layernorm}: embeddings [B, T, H] → the first block's input. */
    Tensor embeddingsLayerNorm(Tensor embeds) { return wordEmbeddingsLayernorm.forward(embeds); }

    /** Block {@code i} in a scope of its own: its intermediates are freed before it returns. */
    Tensor block(int i, Tensor hidden, AttentionContext ctx, KvCache cache) {
        return Scopes.inner(() -> h.get(i).forward(hidden, ctx, cache, i));
    }

    /**
     * ALiBi bias and boolean mask for {@code queries} new positions under the 2-D mask [B, S]
     * (S counting any prefix; records of packed rows marked as {@link PackedMask} says), their
     * additive sum where the kernel takes one, with prefix tuning's keys and values or null.
     */
    AttentionContext attentionContext(Tensor mask, long queries, AttentionPrefix prefix) {
        return withAdditive(contextWithoutAdditive(mask, queries, prefix));
    }

    /** {@link #attentionContext} without the additive bias: what the native decode step reads. */
    private AttentionContext contextWithoutAdditive(Tensor mask, long queries, AttentionPrefix prefix) {
        if (queries == 1 && prefix == null && mask.is_cpu()) {
            AttentionContext step = DecodeContext.of(Tensors.toLongs(mask), mask.size(0), mask.size(1), config.numHeads(), dtype.scalarType(),
                    attention());
            if (step != null) return step;
        }
        boolean packed = PackedMask.isPacked(mask);
        Tensor alibi = Alibi.fromPositions(packed ? PackedMask.positions(mask) : Alibi.positions(mask), config.numHeads(), dtype.scalarType());
        Tensor masked = AttentionMask.build(mask, queries);
        if (packed) masked = masked.logical_or(PackedMask.otherRecords(mask, queries));
        return new AttentionContext(attention(), alibi, masked, null, prefix);
    }

    /** {@code ctx} with ALiBi and the mask as one additive bias where the kernel takes one (SDPA; the eager kernel in float32 and float64). */
    private AttentionContext withAdditive(AttentionContext ctx) {
        boolean additive = attention() == AttentionKernel.SDPA || AttentionMask.additiveIsExact(dtype.scalarType());
        if (!additive || ctx.bias() != null) return ctx;
        return ctx.withBias(AttentionMask.additive(ctx.alibi(), ctx.mask(), config.numHeads()));
    }

    /** {@code ln_f} then the tied lm_head: last block's output [..., H] → logits [..., V]. */
    Tensor head(Tensor hidden) { return lmHead(finalNorm(hidden)); }

    /** {@code ln_f}: the last block's output [..., H] → the lm_head's input. */
    Tensor finalNorm(Tensor hidden) { return lnF.forward(hidden); }

    /** {@code inputIds} [B, T] → embeddings [B, T, H] in the compute dtype (before the layer norm). */
    public Tensor embed(Tensor inputIds) {
        checkIds(inputIds);
        return wordEmbeddings.lookup(inputIds.to(device, ScalarType.Long));
    }

    /** {@code hidden} [..., H] after ln_f → logits [..., V] through the tied word embedding. */
    Tensor lmHead(Tensor hidden) {
        return wordEmbeddings.logits(hidden);
    }

    private Tensor toCompute(Tensor t) {
        if (t.dim() != 3 || t.size(0) < 1 || t.size(1) < 1 || t.size(2) != config.hiddenSize()) {
            throw new IllegalArgumentException("inputs_embeds must be [B, T, " + config.hiddenSize()
                    + "], got " + Tensors.shapeString(t));
        }
        return t.to(device, dtype.scalarType());
    }

    private Tensor attentionMask(CausalLmInput input, long past) {
        long batch = input.batchSize();
        long keys = past + input.prefixLength() + input.length();
        if (input.attentionMask() == null) return torch.ones(new long[]{batch, keys}, Tensors.options(DType.I64, device));
        Tensor mask = input.attentionMask();
        if (mask.dim() != 2 || mask.size(0) != batch || mask.size(1) != keys) {
            throw new IllegalArgumentException("attention_mask must be [" + batch + ", " + keys + "] (past "
                    + past + (input.prefix() != null ? " + prefix " + input.prefixLength() : "") + " + " + input.length()
                    + " new positions), got " + Tensors.shapeString(mask));
        }
        Tensor onDevice = mask.to(device, ScalarType.Long);
        long min = onDevice.numel() == 0 ? 0 : minMax(onDevice)[0];
        if (min < 0) {
            throw new IllegalArgumentException("attention_mask must hold 0 (padding), 1 (token) or k ≥ 2 (record k of a packed row), found " + min);
        }
        return onDevice;
    }

    private Tensor labels(CausalLmInput input) {
        Tensor labels = input.labels();
        if (labels.dim() != 2 || labels.size(0) != input.batchSize() || labels.size(1) != input.length()) {
            throw new IllegalArgumentException("labels must be [" + input.batchSize() + ", " + input.length()
                    + "], got " + Tensors.shapeString(labels));
        }
        Tensor onDevice = labels.to(device, ScalarType.Long);
        Tensor counted = onDevice.ne(new Scalar(CausalLmLoss.IGNORE_INDEX));
        checkRange("labels", onDevice.masked_select(counted));
        return onDevice;
    }

    private void checkIds(Tensor ids) {
        if (ids.dim() != 2 || ids.size(0) < 1 || ids.size(1) < 1) {
            throw new IllegalArgumentException("input_ids must be [B, T] with B, T >= 1, got " + Tensors.shapeString(ids));
        }
        checkRange("input_ids", ids);
    }

    // libtorch would raise an error for these too, but a clear message names what was wrong.
    private void checkRange(String what, Tensor ids) {
        if (ids.numel() == 0) return;
        long[] range = minMax(ids);
        long min = range[0];
        long max = range[1];
        if (min < 0 || max >= config.vocabSize()) {
            throw new IllegalArgumentException(what + " must lie in [0, " + config.vocabSize() + "), found "
                    + (min < 0 ? min : max));
        }
    }

    /**
     * The least and largest of {@code t}'s (≥ 1) integers: read in Java on the CPU, where a decode
     * step's few ids and mask values cost less to scan than four libtorch calls; reduced on the device
     * elsewhere.
     */
    private static long[] minMax(Tensor t) {
        if (!t.is_cpu()) return new long[]{t.min().item_long(), t.max().item_long()};
        long[] values = Tensors.toLongs(t);
        long min = values[0];
        long max = values[0];
        for (long v : values) {
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        return new long[]{min, max};
    }

    @Override
    public void close() {
        wordEmbeddings.close();
        wordEmbeddingsLayernorm.close();
        decodeBlocks.close();
        h.forEach(BloomBlock::close);
        lnF.close();
        if (mappedWeights != null) mappedWeights.close();
        device.close();
    }
}
