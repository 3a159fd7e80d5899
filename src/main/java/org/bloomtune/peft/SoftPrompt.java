package org.bloomtune.peft;

import org.bloomtune.model.BloomModel;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The only trainable parameter of prompt tuning: {@code [num_virtual_tokens, hidden]} embeddings
 * placed ahead of the token embeddings. Kept in float32 on the model's device whatever the compute
 * dtype; gradients accumulate into {@link #grad()} until {@link #zeroGrad()}. The prompt owns its
 * tensor and frees it on {@link #close}.
 */
public final class SoftPrompt implements AutoCloseable {
    static {
        LibTorch.init();
    }

    private final Tensor weight;

    private SoftPrompt(Tensor weight) {
        this.weight = weight;
    }

    /** Takes a copy of {@code embeddings} [N, H] as the prompt. */
    public static SoftPrompt of(Tensor embeddings) {
        if (embeddings.dim() != 2 || embeddings.size(0) < 1) {
            throw new IllegalArgumentException("prompt embeddings must be [num_virtual_tokens, hidden], got "
                    + Tensors.shapeString(embeddings));
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor w = embeddings.detach().to(ScalarType.Float).clone();
            w.requires_grad_(true);
            return new SoftPrompt(Tensors.escape(w));
        }
    }

    /**
     * The prompt {@code config} describes, initialised as it says: RANDOM from {@code seed}, TEXT
     * from its init text through {@code tokenizer} (which may be null for the other inits), or
     * SAMPLE_VOCAB from {@code seed}.
     */
    public static SoftPrompt init(BloomModel model, AdapterConfig config, Tokenizer tokenizer, long seed) {
        if (config.tokenDim() != model.config().hiddenSize()) {
            throw new IllegalArgumentException("token_dim " + config.tokenDim() + " does not match the model's hidden size " + model.config().hiddenSize());
        }
        int n = config.numVirtualTokens();
        return switch (config.init()) {
            case RANDOM -> random(n, config.tokenDim(), seed);
            case TEXT -> {
                if (tokenizer == null) throw new IllegalArgumentException("prompt_tuning_init TEXT needs a tokenizer");
                yield fromTokens(model, tokenizer.encode(config.initText()), n);
            }
            case SAMPLE_VOCAB -> sampleVocab(model, n, seed);
        };
    }

    /** PEFT's RANDOM: standard normal, as {@code nn.Embedding} initialises. */
    public static SoftPrompt random(int numVirtualTokens, int hidden, long seed) {
        try (PointerScope scope = new PointerScope()) {
            Generator g = torch.createCPUGenerator(seed);
            return of(torch.randn(new long[]{numVirtualTokens, hidden}, new GeneratorOptional(g),
                    new TensorOptions(ScalarType.Float)));
        }
    }

    /**
     * PEFT's TEXT: the init text's token ids, cut to N when longer, repeated cyclically when
     * shorter, embedded through the frozen word embedding.
     */
    public static SoftPrompt fromTokens(BloomModel model, long[] initIds, int numVirtualTokens) {
        if (initIds.length == 0) throw new IllegalArgumentException("the prompt init text encodes to no tokens");
        long[] ids = new long[numVirtualTokens];
        for (int i = 0; i < numVirtualTokens; i++) ids[i] = initIds[i % initIds.length];
        return ofRows(model, ids);
    }

    /** PEFT's SAMPLE_VOCAB: the embeddings of N ids drawn uniformly from the vocabulary. */
    public static SoftPrompt sampleVocab(BloomModel model, int numVirtualTokens, long seed) {
        java.util.Random random = new java.util.Random(seed);
        long[] ids = new long[numVirtualTokens];
        for (int i = 0; i < numVirtualTokens; i++) ids[i] = random.nextInt(model.config().vocabSize());
        return ofRows(model, ids);
    }

    private static SoftPrompt ofRows(BloomModel model, long[] ids) {
        try (PointerScope scope = new PointerScope()) {
            return of(model.embed(Tensors.fromLongs(ids, 1, ids.length)).squeeze(0));
        }
    }

    public int numVirtualTokens() { return (int) weight.size(0); }

    public int tokenDim() { return (int) weight.size(1); }

    /** The parameter itself [N, H] float32, requiring grad (owned by this prompt). */
    public Tensor weight() { return weight; }

    /**
     * The accumulated gradient [N, H] (a new handle the caller closes), or an undefined tensor
     * before any backward.
     */
    public Tensor grad() { return Tensors.gradient(weight); }

    public void zeroGrad() {
        try (Tensor g = grad()) {
            if (g.defined()) g.zero_();
        }
    }

    /** A detached float32 copy of the values, e.g. for saving. */
    public Tensor snapshot() { return weight.detach().clone(); }

    @Override
    public void close() {
        weight.close();
    }
}
