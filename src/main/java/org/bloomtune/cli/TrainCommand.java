package org.bloomtune.cli;

import org.bloomtune.autograd.ReversePass;
import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.data.Example;
import org.bloomtune.data.ExampleEncoder;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.CausalLmTask;
import org.bloomtune.train.LrSchedule;
import org.bloomtune.train.RunDirectory;
import org.bloomtune.train.RunMode;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/** The seed recipe: prompt-tune a frozen BLOOM on Alpaca-format instructions. */
@Command(name = "train", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = {"Prompt-tune a frozen BLOOM. --task lm (default): Alpaca data ({instruction, input, output}; JSON list "
                + "or JSONL), loss on the response. --task classify: texts with labels (TSV text<TAB>label, or JSON/JSONL "
                + "{text, label}) and a --verbalizer; loss is cross-entropy over the label scores.",
                "Writes checkpoints, metrics.jsonl, loss.png and the PEFT adapter (OUTPUT/adapter; for classify with its verbalizer.json)."})
final class TrainCommand implements Runnable {
    /** Far beyond PEFT's guidance (10–20 virtual tokens for simple tasks, 50–100 for generation). */
    static final int MAX_VIRTUAL_TOKENS = 4096;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--task", defaultValue = "lm", paramLabel = "lm|classify", description = "lm: instructions and responses; classify: labelled texts")
    String task;
    @Option(names = "--verbalizer", paramLabel = "V.json|SPEC",
            description = "for --task classify: a verbalizer JSON file, or inline like 积极→好，消极→差") String verbalizer;

    @Option(names = "--tokenizer", paramLabel = "tokenizer.json", description = "tokenizer file (default: MODEL/tokenizer.json)")
    Path tokenizer;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "training data") Path data;
    @Option(names = "--eval-data", paramLabel = "FILE", description = "evaluation data (default: the --eval-split tail of --data)") Path evalData;
    @Option(names = "--eval-split", defaultValue = "0.05", paramLabel = "F",
            description = "share of --data held out for evaluation when there is no --eval-data; 0: no evaluation") double evalSplit;
    @Option(names = "--output", required = true, paramLabel = "DIR", description = "run directory: checkpoints, metrics.jsonl, loss.png, adapter/")
    Path output;
    @Option(names = "--overwrite", description = "delete an earlier run in --output first") boolean overwrite;
    @Option(names = "--resume", description = "continue exactly from the newest checkpoint in --output") boolean resume;
    @Option(names = "--allow-changes", description = "with --resume: continue even if settings or data changed (no longer exact)")
    boolean allowChanges;
    @Option(names = "--virtual-tokens", defaultValue = "10", paramLabel = "N", description = "soft prompt length (1-" + MAX_VIRTUAL_TOKENS + ")")
    int virtualTokens;
    @Option(names = "--init", defaultValue = "RANDOM", paramLabel = "RANDOM|TEXT|SAMPLE_VOCAB",
            description = "prompt init: standard normal, the embedded --init-text, or embeddings of random tokens") String init;
    @Option(names = "--init-text", paramLabel = "TEXT", description = "text for --init TEXT, e.g. 这是一段人与助手的对话：") String initText;
    @Option(names = "--template", paramLabel = "T", description = "prompt template (default: the seed's \"Human: {instruction}\\n{input}\\n\\nAssistant: {output}\")")
    String template;
    @Option(names = "--max-length", defaultValue = "256", paramLabel = "N", description = "tokens per example; longer ones are cut") int maxLength;
    @Option(names = "--loss-on-prompt", description = "take the loss on the whole text, not only the response") boolean lossOnPrompt;
    @Option(names = "--skip-bad-rows", description = "skip and count bad data rows instead of stopping") boolean skipBadRows;
    @Option(names = "--batch-size", defaultValue = "4", paramLabel = "B", description = "examples per micro-batch") int batchSize;
    @Option(names = "--grad-accumulation", defaultValue = "1", paramLabel = "K", description = "micro-batches per optimizer step") int accumulation;
    @Option(names = "--epochs", defaultValue = "3", paramLabel = "E", description = "passes over the data") int epochs;
    @Option(names = "--max-steps", defaultValue = "0", paramLabel = "S", description = "stop after S optimizer steps (0: run --epochs)") int maxSteps;
    @Option(names = "--lr", defaultValue = "3e-3", paramLabel = "LR", description = "peak learning rate (soft prompts need a high one)") double lr;
    @Option(names = "--schedule", defaultValue = "linear", paramLabel = "linear|cosine|constant", description = "decay after warmup") String schedule;
    @Option(names = "--warmup-ratio", defaultValue = "0.0", paramLabel = "R", description = "share of the steps spent warming up") double warmupRatio;
    @Option(names = "--weight-decay", defaultValue = "0.0", paramLabel = "W", description = "AdamW's decoupled weight decay") double weightDecay;
    @Option(names = "--max-grad-norm", defaultValue = "1.0", paramLabel = "N", description = "clip the prompt gradient's L2 norm (0: off)") double maxGradNorm;
    @Option(names = "--checkpoint-every", defaultValue = "50", paramLabel = "S", description = "optimizer steps between checkpoints") int checkpointEvery;
    @Option(names = "--eval-every", defaultValue = "0", paramLabel = "S", description = "optimizer steps between evaluations (0: at the end only)") int evalEvery;
    @Option(names = "--reverse-pass", defaultValue = "RECOMPUTE_BLOCKS", paramLabel = "AUTOGRAD|RECOMPUTE_BLOCKS",
            description = "AUTOGRAD keeps every block's activations; RECOMPUTE_BLOCKS recomputes one block at a time (less memory)")
    ReversePass reversePass;
    @Option(names = "--group-by-length", description = "batch examples of similar length together") boolean groupByLength;
    @Option(names = "--seed", defaultValue = "42", paramLabel = "S", description = "data order and prompt init") long seed;

    @Override
    public void run() {
        switch (task) {
            case "lm" -> {
                if (verbalizer != null) throw new IllegalArgumentException("--verbalizer needs --task classify");
                trainLanguageModel();
            }
            case "classify" -> new ClassifierTraining(this).run();
            default -> throw new IllegalArgumentException("--task must be lm or classify, got " + task);
        }
    }

    /**
     * Checks the options shared by both tasks, refuses an output directory that would lose a run,
     * and builds the trainer's configuration. Runs before anything is read or loaded.
     */
    TrainConfig config() {
        PromptInit promptInit = PromptInit.parse(init);
        if (promptInit == PromptInit.TEXT && (initText == null || initText.isEmpty())) {
            throw new IllegalArgumentException("--init TEXT needs --init-text");
        }
        if (virtualTokens < 1 || virtualTokens > MAX_VIRTUAL_TOKENS) {
            throw new IllegalArgumentException("--virtual-tokens must lie in [1, " + MAX_VIRTUAL_TOKENS + "], got " + virtualTokens);
        }
        if (maxLength < 2) throw new IllegalArgumentException("--max-length must be at least 2, got " + maxLength);
        if (!(evalSplit >= 0 && evalSplit < 1)) throw new IllegalArgumentException("--eval-split must lie in [0, 1), got " + evalSplit);
        if (resume && overwrite) throw new IllegalArgumentException("--resume and --overwrite contradict each other");
        if (allowChanges && !resume) throw new IllegalArgumentException("--allow-changes only applies with --resume");
        TrainConfig config = Flags.named(() -> TrainConfig.builder().output(output).epochs(epochs).maxSteps(maxSteps).batchSize(batchSize)
                .gradAccumulation(accumulation).lr(lr).schedule(LrSchedule.Decay.parse(schedule)).warmupRatio(warmupRatio)
                .weightDecay(weightDecay).maxGradNorm(maxGradNorm).checkpointEvery(checkpointEvery).evalEvery(evalEvery)
                .reversePass(reversePass).groupByLength(groupByLength).seed(seed).build());
        new RunDirectory(output).checkStart(runMode());
        return config;
    }

    RunMode runMode() {
        if (overwrite) return RunMode.OVERWRITE;
        if (resume) return allowChanges ? RunMode.RESUME_WITH_CHANGES : RunMode.RESUME;
        return RunMode.NEW;
    }

    /** Refuses, before the weights load, a run whose step cannot fit in the memory available. */
    void checkMemory() {
        BloomConfig shape = BloomConfig.read(org.bloomtune.io.HfCheckpoint.config(modelOptions.model));
        MemoryEstimate.trainingStep(shape, modelOptions.loadOptions(), batchSize, maxLength + virtualTokens,
                        reversePass == ReversePass.AUTOGRAD)
                .requireFits("a training step of " + batchSize + " × " + (maxLength + virtualTokens) + " positions",
                        "--virtual-tokens, --batch-size or --max-length, or use --reverse-pass RECOMPUTE_BLOCKS or --int8");
    }

    Tokenizer tokenizer() {
        return Tokenizer.load(tokenizer != null ? tokenizer : modelOptions.model.resolve("tokenizer.json"));
    }

    private void trainLanguageModel() {
        TrainConfig config = config();
        Tokenizer tok = tokenizer();
        PromptTemplate tpl = template == null ? PromptTemplate.SEED : new PromptTemplate(template.replace("\\n", "\n"));
        // Read (and reject bad rows) before the model loads: a data problem costs no load time.
        Split<AlpacaRecord> records = split(read(data), () -> read(evalData));
        checkMemory();
        try (BloomModel model = modelOptions.load()) {
            ExampleEncoder encoder = new ExampleEncoder(tok, tpl, maxLength, model.config().eosTokenId(), lossOnPrompt);
            List<Example> train = records.train().stream().map(encoder::encode).toList();
            List<Example> eval = records.eval().stream().map(encoder::encode).toList();
            try (SoftPrompt prompt = initialPrompt(model, tok)) {
                Trainer.Summary s = new Trainer<>(new CausalLmTask(model), config, adapterConfig(model, train.size(), eval.size()), System.out)
                        .train(prompt, train, eval, runMode());
                System.out.printf("done: %d steps, last loss %.4f%s; adapter %s, loss curve %s%n", s.steps(), s.lastLoss(),
                        s.eval() == null ? "" : String.format(", eval loss %.4f", s.evalLoss()), s.adapter(), output.resolve("loss.png"));
            }
        }
    }

    record Split<T>(List<T> train, List<T> eval) {}

    /** --data for training and --eval-data (read by {@code evalFile}) for eval, or else the --eval-split tail of --data. */
    <T> Split<T> split(List<T> records, java.util.function.Supplier<List<T>> evalFile) {
        if (evalData != null) return new Split<>(records, evalFile.get());
        int kept = records.size() - (int) Math.round(records.size() * evalSplit);
        if (kept < 1) throw new IllegalArgumentException("--eval-split " + evalSplit + " leaves no training examples of " + records.size());
        return new Split<>(records.subList(0, kept), records.subList(kept, records.size()));
    }

    /** The adapter's PEFT config, after printing what will be trained. */
    AdapterConfig adapterConfig(BloomModel model, int trainSize, int evalSize) {
        PromptInit promptInit = PromptInit.parse(init);
        System.out.printf("%d training and %d eval examples%s; %d virtual tokens (%s init); %,d trainable of %,d parameters (%.5f %%)%n",
                trainSize, evalSize, evalSize == 0 ? " (no evaluation)" : "", virtualTokens, promptInit,
                (long) virtualTokens * model.config().hiddenSize(), model.parameterCount(),
                100.0 * virtualTokens * model.config().hiddenSize() / model.parameterCount());
        return AdapterConfig.forModel(model.config(), virtualTokens, promptInit, initText, modelOptions.model.toString());
    }

    private List<AlpacaRecord> read(Path file) {
        AlpacaReader.Result r = AlpacaReader.read(file, skipBadRows);
        if (!r.skipped().isEmpty()) {
            System.out.printf("skipped %d bad rows in %s, e.g. %s%n", r.skipped().size(), file, r.skipped().getFirst());
        }
        return r.records();
    }

    SoftPrompt initialPrompt(BloomModel model, Tokenizer tok) {
        return switch (PromptInit.parse(init)) {
            case RANDOM -> SoftPrompt.random(virtualTokens, model.config().hiddenSize(), seed);
            case TEXT -> SoftPrompt.fromTokens(model, tok.encode(initText), virtualTokens);
            case SAMPLE_VOCAB -> SoftPrompt.sampleVocab(model, virtualTokens, seed);
        };
    }
}
