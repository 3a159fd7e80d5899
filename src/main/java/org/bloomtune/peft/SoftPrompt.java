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

import java.util.Map;

/**
 * The trainable part of a continuous prompt and the prompt it yields: {@link #output()} is
 * {@code [num_virtual_tokens, width]} — embeddings ahead of the token embeddings (prompt tuning,
 * P-tuning; width = hidden) or every layer's keys and values (prefix tuning; width = 2 · layers ·
 * hidden). Without an encoder the trainable tensor {@link #weight()} is that prompt; with one
 * (P-tuning, projected prefix) it is the encoder's packed weights and the prompt is computed from
 * them, recorded for autograd. Kept in float32 on the model's device whatever the compute dtype;
 * gradients accumulate into {@link #grad()} until {@link #zeroGrad()}. The prompt owns its tensor
 * and frees it on {@link #close}.
 */
public final class SoftPrompt implements AutoCloseable {
    static {
        LibTorch.init();
    }

    /** The name of the trainable tensor without an encoder, as in PEFT's adapter file. */
    public static final String PROMPT_EMBEDDINGS = "prompt_embeddings";

    private final PeftType type;
    private final Tensor weight;
    private final PromptEncoder encoder;      // null: weight is the prompt
    private final int numVirtualTokens;
    private final int width;

    private SoftPrompt(PeftType type, Tensor weight, PromptEncoder encoder, int numVirtualTokens, int width) {
        this.type = type;
        this.weight = weight;
        this.encoder = encoder;
        this.numVirtualTokens = numVirtualTokens;
        this.width = width;
    }

    /** Takes a copy of {@code embeddings} [N, H] as a prompt-tuning prompt. */
    public static SoftPrompt of(Tensor embeddings) { return of(PeftType.PROMPT_TUNING, embeddings); }

    /** Takes a copy of {@code prompt} [N, width] as the trainable prompt of {@code type}, with no encoder. */
    public static SoftPrompt of(PeftType type, Tensor prompt) {
        if (prompt.dim() != 2 || prompt.size(0) < 1 || prompt.size(1) < 1) {
            throw new IllegalArgumentException("prompt embeddings must be [num_virtual_tokens, width], got "
                    + Tensors.shapeString(prompt));
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor w = prompt.detach().to(ScalarType.Float).clone();
            w.requires_grad_(true);
            return new SoftPrompt(type, Tensors.escape(w), null, (int) prompt.size(0), (int) prompt.size(1));
        }
    }

    /** A prompt computed by {@code config}'s encoder from {@code packed} weights (copied; laid out as {@link PromptEncoder#layout()}). */
    public static SoftPrompt encoded(AdapterConfig config, Tensor packed) {
        PromptEncoder encoder = PromptEncoder.of(config);
        if (encoder == null) throw new IllegalArgumentException(config.peftType() + " without projection has no encoder");
        if (packed.dim() != 1 || packed.size(0) != encoder.layout().numel()) {
            throw new IllegalArgumentException("packed encoder weights must be [" + encoder.layout().numel() + "], got " + Tensors.shapeString(packed));
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor w = packed.detach().to(ScalarType.Float).clone();
            w.requires_grad_(true);
            return new SoftPrompt(config.peftType(), Tensors.escape(w), encoder, config.numVirtualTokens(), config.promptWidth());
        }
    }

    /**
     * The prompt {@code config} describes, initialised as it says: for prompt tuning RANDOM from
     * {@code seed}, TEXT from its init text through {@code tokenizer} (which may be null for the
     * other inits), or SAMPLE_VOCAB from {@code seed}; for P-tuning and a projected prefix the
     * encoder's weights as PyTorch initialises its modules ({@link PromptEncoder#init}); for a plain
     * prefix standard normal, as PEFT's {@code Embedding}.
     */
    public static SoftPrompt init(BloomModel model, AdapterConfig config, Tokenizer tokenizer, long seed) {
        if (config.tokenDim() != model.config().hiddenSize()) {
            throw new IllegalArgumentException("token_dim " + config.tokenDim() + " does not match the model's hidden size " + model.config().hiddenSize());
        }
        if (config.peftType() == PeftType.PREFIX_TUNING && config.numLayers() != model.config().numLayers()) {
            throw new IllegalArgumentException("num_layers " + config.numLayers() + " does not match the model's " + model.config().numLayers());
        }
        int n = config.numVirtualTokens();
        PromptEncoder encoder = PromptEncoder.of(config);
        if (encoder != null) {
            try (Tensor packed = encoder.init(seed)) {
                return encoded(config, packed);
            }
        }
        if (config.peftType() == PeftType.PREFIX_TUNING) return random(PeftType.PREFIX_TUNING, n, config.promptWidth(), seed);
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
        return random(PeftType.PROMPT_TUNING, numVirtualTokens, hidden, seed);
    }

    private static SoftPrompt random(PeftType type, int numVirtualTokens, int width, long seed) {
        try (PointerScope scope = new PointerScope()) {
            Generator g = torch.createCPUGenerator(seed);
            return of(type, torch.randn(new long[]{numVirtualTokens, width}, new GeneratorOptional(g),
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

    public PeftType type() { return type; }

    /**
     * What decides whether prompts can share one forward: how they enter (virtual tokens or a
     * prefix) and N. Rows of different shapes prefill apart and can decode together.
     */
    public record Shape(boolean prefix, int numVirtualTokens) {
        /** The bare model's rows. */
        public static final Shape NONE = new Shape(false, 0);
    }

    public Shape shape() { return new Shape(!type.entersEmbeddings(), numVirtualTokens); }

    public int numVirtualTokens() { return numVirtualTokens; }

    /** The width of a prompt row: the hidden size, or 2 · layers · hidden for a prefix. */
    public int tokenDim() { return width; }

    /** The encoder, or null when {@link #weight()} is the prompt itself. */
    public PromptEncoder encoder() { return encoder; }

    /**
     * The trainable tensor, float32, requiring grad (owned by this prompt): the prompt [N, width],
     * or the encoder's packed weights.
     */
    public Tensor weight() { return weight; }

    /**
     * The prompt [N, width] float32 (a new handle in the open scope): the weight itself, or the
     * encoder's output — recorded back to the weights when grad mode is on.
     */
    public Tensor output() {
        return encoder == null ? weight.alias() : encoder.forward(weight);
    }

    /** The trainable tensors by name: PEFT's encoder names, or {@value #PROMPT_EMBEDDINGS}. Views of {@link #weight()}. */
    public Map<String, Tensor> namedParameters() {
        return encoder == null ? Map.of(PROMPT_EMBEDDINGS, weight.detach()) : encoder.layout().views(weight.detach());
    }

    /** {@link #grad()} split as {@link #namedParameters()} (zeros before any backward); handles in the open scope. */
    public Map<String, Tensor> namedGradients() {
        Tensor g = Tensors.gradient(weight);
        Tensor grad = g.defined() ? g : torch.zeros_like(weight.detach());
        return encoder == null ? Map.of(PROMPT_EMBEDDINGS, grad) : encoder.layout().views(grad);
    }

    /** A plain prompt of the same type holding this prompt's output: what inference needs, as PEFT's saved files hold it. */
    public SoftPrompt fold() {
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            return of(type, output());
        }
    }

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

    /** A detached float32 copy of the prompt [N, width] (the encoder's output when there is one), e.g. for saving. */
    public Tensor snapshot() {
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            return Tensors.escape(output().detach().clone());
        }
    }

    @Override
    public void close() {
        weight.close();
    }
}
