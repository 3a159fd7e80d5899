package org.bloomtune.generate;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.GreedySteps;
import org.bloomtune.model.KvCache;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Autoregressive decoding with a KV cache: one forward over the prompt (prefill), then one position
 * per step. Prompts of different lengths are left-padded so every row's next token sits in the
 * last column; ALiBi positions skip the padding, so padding changes nothing.
 */
public final class Generator {
    private final BloomModel model;

    public Generator(BloomModel model) {
        this.model = model;
    }

    /**
     * Generates two tokens greedily after a one-token prompt in each of {@code rows} rows and drops
     * them. A process's first generation pays once for loading and linking the decode path — its
     * classes, the native kernels' downcalls and thread hand-offs, libtorch's first calls — which
     * then lands in the first decode step a caller times or a client waits for; a server warms up
     * before it listens, as llama.cpp warms up after loading a model. Returns the warm-up's timings.
     */
    public GenerationStats warmUp(int rows) {
        if (rows < 1) throw new IllegalArgumentException("a warm-up needs at least one row, got " + rows);
        List<long[]> prompts = new ArrayList<>();
        for (int b = 0; b < rows; b++) prompts.add(new long[]{0});
        return generate(prompts, GenerationConfig.greedy(2, -1), TokenListener.NONE).stats();
    }

    /** Left-pads {@code prompts} with the model's pad id and generates for all of them at once. */
    public GenerationResult generate(List<long[]> prompts, GenerationConfig config, TokenListener listener) {
        try (LeftPadded batch = LeftPadded.of(prompts, model.config().padTokenId())) {
            return generate(CausalLmInput.ids(batch.inputIds()).mask(batch.attentionMask()),
                    LeftPadded.seen(prompts), config, listener);
        }
    }

    /**
     * Generates after an arbitrary prefill: token ids, or embeddings such as a soft prompt followed
     * by the prompt's token embeddings. {@code seen} holds each row's tokens for the repetition
     * penalty; the attention mask of the prefill must be given.
     */
    public GenerationResult generate(CausalLmInput prefill, List<Set<Long>> seen, GenerationConfig config,
                                     TokenListener listener) {
        if (prefill.attentionMask() == null) throw new IllegalArgumentException("the prefill needs an attention mask");
        int batch = Math.toIntExact(prefill.batchSize());
        if (seen.size() != batch) throw new IllegalArgumentException(seen.size() + " token sets for a batch of " + batch);
        List<Set<Long>> tokens = new ArrayList<>();
        for (Set<Long> s : seen) tokens.add(new LinkedHashSet<>(s));
        TokenPicker picker = new TokenPicker(config);
        List<List<Long>> produced = new ArrayList<>();
        for (int b = 0; b < batch; b++) produced.add(new ArrayList<>());
        boolean[] finished = new boolean[batch];
        long began = System.nanoTime();
        long decodeBegan = began;
        int decodeSteps = 0;
        long[] stepNanos = new long[Math.min(256, config.maxNewTokens())];      // grown as steps come: max-new-tokens may be far more than run
        // The cache holds the prefill (with a prefix's positions) and every token fed back: all but the last one produced.
        long positions = prefill.prefixLength() + prefill.length() + config.maxNewTokens() - 1;
        try (KvCache cache = new KvCache(model.config().numLayers(), positions)) {
            long[] next;
            // The mask's values [B, columns] once the prefill has checked its shape; a column of ones more each step, one tensor a step made from them.
            long[] mask;
            long columns;
            try (PointerScope scope = new PointerScope()) {
                Tensor prefillMask = prefill.attentionMask().to(ScalarType.Long);
                next = step(prefill.mask(prefillMask), cache, picker, tokens, finished);
                mask = Tensors.toLongs(prefillMask);
                columns = prefillMask.size(1);
            }
            decodeBegan = System.nanoTime();
            try (GreedySteps greedy = picker.plainArgmax() ? model.greedySteps(cache, mask, batch, columns, positions) : null) {
                for (int n = 1; ; n++) {
                    record(next, produced, finished, listener, config);
                    if (n >= config.maxNewTokens() || allTrue(finished)) break;
                    long stepBegan = System.nanoTime();
                    if (greedy != null) {
                        next = fed(greedy.next(next), tokens, finished);
                    } else {
                        mask = withTokenColumn(mask, batch, columns++);
                        try (PointerScope scope = new PointerScope()) {
                            next = step(CausalLmInput.ids(Tensors.fromLongs(next, batch, 1)).mask(Tensors.fromLongs(mask, batch, columns)),
                                    cache, picker, tokens, finished);
                        }
                    }
                    if (decodeSteps == stepNanos.length) stepNanos = Arrays.copyOf(stepNanos, 2 * stepNanos.length);
                    stepNanos[decodeSteps++] = System.nanoTime() - stepBegan;
                }
            }
        }
        long[][] out = new long[batch][];
        for (int b = 0; b < batch; b++) out[b] = produced.get(b).stream().mapToLong(Long::longValue).toArray();
        long ended = System.nanoTime();
        return new GenerationResult(out, new GenerationStats(batch, prefill.length(), (decodeBegan - began) / 1e9, decodeSteps, (ended - decodeBegan) / 1e9,
                GenerationStats.medianSeconds(stepNanos, decodeSteps)));
    }

    /** One forward; returns each row's next token (the pad id for finished rows). */
    private long[] step(CausalLmInput input, KvCache cache, TokenPicker picker, List<Set<Long>> seen, boolean[] finished) {
        long[] picked;
        if (picker.plainArgmax()) {
            picked = model.nextTokenArgmax(input, cache);
        } else {
            try (Tensor logits = model.nextTokenLogits(input, cache)) {
                picked = pickRows(logits, picker, seen, finished);
            }
        }
        return fed(picked, seen, finished);
    }

    /** The tokens fed back after {@code picked}: the pad id for finished rows; the others' picks, added to their seen tokens. */
    private long[] fed(long[] picked, List<Set<Long>> seen, boolean[] finished) {
        long[] next = new long[finished.length];
        for (int b = 0; b < next.length; b++) {
            next[b] = finished[b] ? model.config().padTokenId() : picked[b];
            if (!finished[b]) seen.get(b).add(next[b]);
        }
        return next;
    }

    /** Each unfinished row's pick by {@code picker} from its logits as floats (finished rows: unused 0). */
    private long[] pickRows(Tensor logits, TokenPicker picker, List<Set<Long>> seen, boolean[] finished) {
        int vocab = (int) model.config().vocabSize();
        float[] all = Tensors.toFloats(logits);                          // [B * V]
        long[] picked = new long[finished.length];
        for (int b = 0; b < finished.length; b++) {
            if (finished[b]) continue;
            picked[b] = picker.pick(Arrays.copyOfRange(all, b * vocab, (b + 1) * vocab), seen.get(b));
        }
        return picked;
    }

    private static void record(long[] next, List<List<Long>> produced, boolean[] finished,
                               TokenListener listener, GenerationConfig config) {
        for (int b = 0; b < next.length; b++) {
            if (finished[b]) continue;
            produced.get(b).add(next[b]);
            listener.onToken(b, next[b]);
            if (next[b] == config.eosTokenId() || listener.stopRow(b)) finished[b] = true;
        }
    }

    /** The mask's values [rows, columns] with a column of ones after each row's: every row's next position holds a token. */
    private static long[] withTokenColumn(long[] mask, int rows, long columns) {
        int width = Math.toIntExact(columns);
        long[] grown = new long[mask.length + rows];
        for (int b = 0; b < rows; b++) {
            System.arraycopy(mask, b * width, grown, b * (width + 1), width);
            grown[b * (width + 1) + width] = 1;
        }
        return grown;
    }

    private static boolean allTrue(boolean[] flags) {
        for (boolean f : flags) if (!f) return false;
        return true;
    }
}
