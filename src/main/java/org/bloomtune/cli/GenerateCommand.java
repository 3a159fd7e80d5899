package org.bloomtune.cli;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Generates from token ids; prints the new ids of each prompt, one line per prompt, last. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate with the KV cache. Greedy unless a sampling flag is given. The last line "
                + "printed (one per --ids, in order) is the new token ids, comma-separated.")
final class GenerateCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--ids", paramLabel = "1,2,3",
            description = "prompt token ids, comma-separated; repeat for a batch (left-padded)")
    List<String> ids;

    @Option(names = "--prompt", paramLabel = "TEXT",
            description = "prompt text (\\n is a newline); repeat for a batch; needs a tokenizer")
    List<String> prompt;

    @Option(names = "--tokenizer", paramLabel = "tokenizer.json", description = "default: MODEL/tokenizer.json")
    Path tokenizer;

    @Option(names = "--max-new-tokens", defaultValue = "20", paramLabel = "N", description = "default: ${DEFAULT-VALUE}")
    int maxNewTokens;

    @Option(names = "--greedy", description = "argmax decoding (the default)")
    boolean greedy;

    @Option(names = "--temperature", paramLabel = "T", description = "sample, dividing logits by T")
    Double temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "sample from the K most likely tokens")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "sample from the smallest set of mass P")
    Double topP;

    @Option(names = "--repetition-penalty", defaultValue = "1.0", paramLabel = "R", description = "CTRL penalty, 1 = off")
    double repetitionPenalty;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "sampling seed")
    long seed;

    @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT prompt-tuning adapter to generate with")
    Path adapter;

    @Option(names = "--eos-id", paramLabel = "ID", description = "stop id (default: the config's eos_token_id; -1: never)")
    Long eosId;

    @Override
    public void run() {
        boolean sample = temperature != null || topK != null || topP != null;
        if (greedy && sample) {
            throw new IllegalArgumentException("--greedy cannot be combined with --temperature, --top-k or --top-p");
        }
        if ((ids == null) == (prompt == null)) throw new IllegalArgumentException("give --ids or --prompt (not both)");
        Tokenizer tok = prompt == null && !Files.exists(tokenizerPath()) ? null : Tokenizer.load(tokenizerPath());
        List<long[]> prompts = new ArrayList<>();
        if (ids != null) {
            for (String s : ids) prompts.add(parseIds(s));
        } else {
            for (String p : prompt) prompts.add(tok.encode(p.replace("\\n", "\n")));
        }
        try (BloomModel model = modelOptions.load()) {
            long vocab = model.config().vocabSize();
            for (long[] p : prompts) {
                for (long id : p) {
                    if (id < 0 || id >= vocab) throw new IllegalArgumentException("--ids: token " + id + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
            long eos = eosId != null ? eosId : model.config().eosTokenId();
            GenerationConfig config = new GenerationConfig(maxNewTokens, sample,
                    temperature == null ? 1.0 : temperature, topK == null ? 0 : topK, topP == null ? 1.0 : topP,
                    repetitionPenalty, eos, seed);
            GenerationResult result;
            if (adapter == null) {
                result = new Generator(model).generate(prompts, config, TokenListener.NONE);
            } else {
                try (PeftAdapter.Loaded a = PeftAdapter.load(adapter, model.config())) {
                    result = PromptedGeneration.generate(model, a.prompt(), prompts, config, TokenListener.NONE);
                }
            }
            for (int b = 0; b < prompts.size(); b++) {
                if (tok != null) System.out.println(tok.decode(prompts.get(b)) + tok.decode(result.row(b)));
            }
            for (int b = 0; b < prompts.size(); b++) System.out.println(result.idsLine(b));
        }
    }

    private Path tokenizerPath() {
        return tokenizer != null ? tokenizer : modelOptions.model.resolve("tokenizer.json");
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
