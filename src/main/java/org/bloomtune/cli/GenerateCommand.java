package org.bloomtune.cli;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TextStream;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.tensor.PeakAboveLoad;
import org.bloomtune.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Generates from token ids or text. With a tokenizer, the text of a single prompt streams to stdout
 * as it is generated; the last lines are always the new ids, one line per prompt.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = {"Generate with the KV cache. Greedy unless a sampling flag is given. With a tokenizer the text is printed "
                + "(streamed as it is generated for a single prompt; special tokens skipped); the last lines printed "
                + "(one per prompt, in order) are the new token ids, comma-separated."})
final class GenerateCommand implements Runnable {
    /** Beyond this many new tokens a run is almost surely a mistake (BLOOM was trained on 2048-token contexts). */
    static final int MAX_NEW_TOKENS = 2048;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--ids", paramLabel = "1,2,3", description = "prompt token ids, comma-separated; repeat for a batch (left-padded)")
    List<String> ids;

    @Option(names = "--prompt", paramLabel = "TEXT", description = "prompt text (\\n is a newline); repeat for a batch; needs a tokenizer")
    List<String> prompt;

    @Option(names = "--tokenizer", paramLabel = "tokenizer.json", description = "tokenizer file (default: MODEL/tokenizer.json)")
    Path tokenizer;

    @Option(names = "--max-new-tokens", defaultValue = "20", paramLabel = "N",
            description = "new tokens per prompt at most (over " + MAX_NEW_TOKENS + " needs --force)")
    int maxNewTokens;

    @Option(names = "--force", description = "allow --max-new-tokens over " + MAX_NEW_TOKENS)
    boolean force;

    @Option(names = "--stop", paramLabel = "TEXT", description = "end a row at this text, which is cut from the output (\\n is a newline); repeatable")
    List<String> stop;

    @Option(names = "--greedy", description = "argmax decoding (the default)")
    boolean greedy;

    @Option(names = "--temperature", paramLabel = "T", description = "sample, dividing logits by T (default: greedy)")
    Double temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "sample from the K most likely tokens (default: all)")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "sample from the smallest set of mass P (default: 1, all)")
    Double topP;

    @Option(names = "--repetition-penalty", defaultValue = "1.0", paramLabel = "R", description = "CTRL penalty on repeated tokens, 1 = off")
    double repetitionPenalty;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "sampling seed")
    long seed;

    @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT prompt-tuning adapter to generate with")
    Path adapter;

    @Option(names = "--eos-id", paramLabel = "ID", description = "stop id (default: the config's eos_token_id; -1: never)")
    Long eosId;

    @Option(names = "--stats", description = "print prefill and decode timings (ms/position, ms/step and the median step) and the peak memory beside its estimate to stderr")
    boolean stats;

    @Option(names = "--no-warmup", description = "skip the two-token generation run before the real one (it keeps the process's one-time "
            + "loading and linking of the decode path out of the first steps and out of --stats)")
    boolean noWarmup;

    @Override
    public void run() {
        boolean sample = temperature != null || topK != null || topP != null;
        if (greedy && sample) throw new IllegalArgumentException("--greedy cannot be combined with --temperature, --top-k or --top-p");
        if ((ids == null) == (prompt == null)) throw new IllegalArgumentException("give --ids or --prompt (not both)");
        if (maxNewTokens > MAX_NEW_TOKENS && !force) {
            throw new IllegalArgumentException("--max-new-tokens " + maxNewTokens + " is over " + MAX_NEW_TOKENS + "; pass --force if you mean it");
        }
        List<String> stops = stop == null ? List.of() : stop.stream().map(s -> s.replace("\\n", "\n")).toList();
        if (stops.stream().anyMatch(String::isEmpty)) throw new IllegalArgumentException("--stop must not be empty");
        Tokenizer tok = prompt == null && !Files.exists(tokenizerPath()) ? null : Tokenizer.load(tokenizerPath());
        if (tok == null && !stops.isEmpty()) throw new IllegalArgumentException("--stop needs a tokenizer (" + tokenizerPath() + " is missing)");
        List<long[]> prompts = prompts(tok);
        BloomConfig shape = BloomConfig.read(HfCheckpoint.config(modelOptions.dir()));
        checkIds(prompts, shape.vocabSize());
        int longest = prompts.stream().mapToInt(p -> p.length).max().orElse(0);
        MemoryEstimate estimate = MemoryEstimate.generation(shape, modelOptions.loadOptions(), prompts.size(), longest, maxNewTokens);
        estimate.requireFits("generating " + maxNewTokens + " tokens for " + prompts.size() + " prompt(s)", "--max-new-tokens or the number of prompts");
        try (BloomModel model = modelOptions.loadForInference()) {
            if (!noWarmup) new Generator(model).warmUp(prompts.size());
            PeakAboveLoad memory = stats ? PeakAboveLoad.start() : null;
            long eos = eosId != null ? eosId : model.config().eosTokenId();
            GenerationConfig config = Flags.named(() -> new GenerationConfig(maxNewTokens, sample, temperature == null ? 1.0 : temperature,
                    topK == null ? 0 : topK, topP == null ? 1.0 : topP, repetitionPenalty, eos, seed));
            PrintStream out = System.out;
            boolean streaming = tok != null && prompts.size() == 1;
            if (streaming) {
                out.print(tok.decode(prompts.getFirst(), true));
                out.flush();
            }
            TextStream text = tok == null ? null : new TextStream(tok, prompts.size(), stops, (row, chunk) -> {
                if (streaming) {
                    out.print(chunk);
                    out.flush();
                }
            });
            GenerationResult result = generate(model, prompts, config, text == null ? TokenListener.NONE : text);
            if (text != null) {
                text.finish();
                if (streaming) out.println();
                else for (int b = 0; b < prompts.size(); b++) out.println(tok.decode(prompts.get(b), true) + text.text(b));
            }
            for (int b = 0; b < prompts.size(); b++) out.println(result.idsLine(b));
            if (stats) {
                System.err.println(result.stats().summary());
                System.err.println("peak " + memory.describe(estimate.working()));
            }
        }
    }

    private GenerationResult generate(BloomModel model, List<long[]> prompts, GenerationConfig config, TokenListener listener) {
        if (adapter == null) return new Generator(model).generate(prompts, config, listener);
        try (PeftAdapter.Loaded a = PeftAdapter.loadFolded(adapter, model.config())) {
            return PromptedGeneration.generate(model, a.prompt(), prompts, config, listener);
        }
    }

    private List<long[]> prompts(Tokenizer tok) {
        List<long[]> out = new ArrayList<>();
        if (ids != null) {
            for (String s : ids) out.add(parseIds(s));
            return out;
        }
        for (int i = 0; i < prompt.size(); i++) {
            long[] encoded = tok.encode(prompt.get(i).replace("\\n", "\n"));
            if (encoded.length == 0) throw new IllegalArgumentException("--prompt " + (i + 1) + " is empty");
            out.add(encoded);
        }
        return out;
    }

    // Ids the user typed are the user's mistake; ids a tokenizer produced mean tokenizer and model do not match.
    private void checkIds(List<long[]> prompts, long vocab) {
        for (long[] p : prompts) {
            for (long id : p) {
                if (id >= 0 && id < vocab) continue;
                if (ids != null) throw new IllegalArgumentException("--ids: token " + id + " is outside the vocabulary [0, " + vocab + ")");
                throw new IllegalArgumentException("--prompt: " + tokenizerPath() + " produced token " + id + ", outside the model's vocabulary [0, "
                        + vocab + "): the tokenizer does not belong to this model");
            }
        }
    }

    private Path tokenizerPath() {
        return tokenizer != null ? tokenizer : modelOptions.dir().resolve("tokenizer.json");
    }

    static long[] parseIds(String text) {
        String[] parts = text.split(",");
        long[] out = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Long.parseLong(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--ids: '" + parts[i] + "' is not a token id (expected e.g. 1,2,3)");
            }
        }
        return out;
    }
}
