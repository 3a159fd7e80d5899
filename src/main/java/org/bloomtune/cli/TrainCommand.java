package org.bloomtune.cli;

import org.bloomtune.PromptTuning;
import org.bloomtune.TaskSpec;
import org.bloomtune.Tasks;
import org.bloomtune.TrainedPrompt;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.classify.ClassifyReader;
import org.bloomtune.dist.Collective;
import org.bloomtune.dist.DistributedConfig;
import org.bloomtune.dist.C10dCollective;
import org.bloomtune.dist.Launcher;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.EncoderConfig;
import org.bloomtune.peft.EncoderType;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.LrSchedule;
import org.bloomtune.train.RunDirectory;
import org.bloomtune.train.RunMode;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.TrainingListener;
import org.bloomtune.train.TrainingStop;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
/** The seed recipe: prompt-tune a frozen BLOOM on Alpaca-format instructions. */
@Command(name = "train", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = {"Prompt-tune a frozen BLOOM. --task lm (default): Alpaca data ({instruction, input, output}; JSON list "
                + "or JSONL), loss on the response. --task classify: texts with labels (TSV text<TAB>label, or JSON/JSONL "
                + "{text, label}) and a --verbalizer; loss is cross-entropy over the label scores.",
                "Writes checkpoints, metrics.jsonl, loss.png and the PEFT adapter (OUTPUT/adapter; for classify with its verbalizer.json)."})
final class TrainCommand implements java.util.concurrent.Callable<Integer> {
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
    @Option(names = "--peft-type", defaultValue = "prompt", paramLabel = "prompt|p-tuning|prefix",
            description = "prompt tuning (embeddings ahead of the input), P-tuning (those from a small MLP/LSTM encoder) or "
                    + "prefix tuning (keys and values in every layer)") String peftType;
    @Option(names = "--encoder-type", paramLabel = "MLP|LSTM", description = "for --peft-type p-tuning: the encoder (default MLP)") String encoderType;
    @Option(names = "--encoder-hidden-size", paramLabel = "E",
            description = "for p-tuning and --prefix-projection: the encoder's width (default: the model's hidden size)") Integer encoderHiddenSize;
    @Option(names = "--prefix-projection", description = "for --peft-type prefix: compute the prefix through a Linear-Tanh-Linear projection")
    boolean prefixProjection;
    @Option(names = "--virtual-tokens", defaultValue = "10", paramLabel = "N", description = "soft prompt length (1-" + AdapterConfig.MAX_VIRTUAL_TOKENS + ")")
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
    @Option(names = "--reverse-pass", defaultValue = "auto", paramLabel = "auto|AUTOGRAD|RECOMPUTE_BLOCKS", converter = ReversePassFlag.class,
            description = "AUTOGRAD keeps every block's activations (fastest); RECOMPUTE_BLOCKS recomputes one block at a time (least memory); "
                    + "auto takes AUTOGRAD when its estimated peak fits --max-memory")
    ReversePass reversePass;
    @Option(names = "--max-memory", paramLabel = "SIZE",
            description = "memory budget for --reverse-pass auto, weights included (e.g. 12GiB); default 80%% of physical memory")
    String maxMemory;
    @Option(names = "--group-by-length", description = "batch examples of similar length together") boolean groupByLength;
    @Option(names = "--packing", description = "--task lm: pack several examples into each row of --max-length tokens, "
            + "each attending only to itself and the prompt (fewer pad tokens, fewer steps per epoch)") boolean packing;
    @Option(names = "--padded-batches", description = "--task lm: every example in a row of its own, padded to the batch's longest, "
            + "as transformers' collators do (the default puts a batch's examples into as few rows as fit within its longest "
            + "where no loss term changes: the same loss, fewer pad tokens computed)") boolean paddedBatches;
    @Option(names = "--seed", defaultValue = "42", paramLabel = "S", description = "data order and prompt init") long seed;

    @Option(names = "--nproc-per-node", defaultValue = "0", paramLabel = "N",
            description = "data parallel: start N ranks on this machine (0: one process, or a rank started by torchrun's environment)")
    int nprocPerNode;
    @Option(names = "--nnodes", defaultValue = "1", paramLabel = "M", description = "data parallel: machines in the run (one rank each unless --nproc-per-node)") int nnodes;
    @Option(names = "--node-rank", defaultValue = "0", paramLabel = "K", description = "data parallel: this machine's index") int nodeRank;
    @Option(names = "--master-addr", defaultValue = "127.0.0.1", paramLabel = "ADDR", description = "data parallel: rank 0's machine (it serves the rendezvous)")
    String masterAddr;
    @Option(names = "--master-port", defaultValue = "29500", paramLabel = "PORT", description = "data parallel: rank 0's rendezvous port") int masterPort;
    @Option(names = "--threads", defaultValue = "0", paramLabel = "T", description = "data parallel: compute threads per rank (0: the cores shared out)")
    int threads;
    @Option(names = "--dist-timeout", defaultValue = "300", paramLabel = "SECONDS",
            description = "data parallel: a rank that dies or hangs stops the others within this") int distTimeout;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (!task.equals("lm") && !task.equals("classify")) throw new IllegalArgumentException("--task must be lm or classify, got " + task);
        if (task.equals("lm") && verbalizer != null) throw new IllegalArgumentException("--verbalizer needs --task classify");
        if (task.equals("classify") && verbalizer == null) throw new IllegalArgumentException("--task classify needs --verbalizer");
        if (task.equals("classify") && packing) throw new IllegalArgumentException("--packing applies to --task lm");
        if (task.equals("classify") && paddedBatches) throw new IllegalArgumentException("--padded-batches applies to --task lm");
        if (distTimeout < 1) throw new IllegalArgumentException("--dist-timeout must be at least 1 second, got " + distTimeout);
        DistributedConfig worker = DistributedConfig.fromEnvironment(System.getenv(), Duration.ofSeconds(distTimeout));
        if (worker == null && (nprocPerNode > 0 || nnodes > 1)) return launch();
        TrainConfig config = config();
        Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : modelOptions.dir().resolve("tokenizer.json"));
        // Read (and reject bad rows) before the model loads: a data problem costs no load time.
        TaskSpec spec = task.equals("lm") ? instructions() : classification();
        checkMemory();
        boolean oneProcess = worker == null || !worker.isDistributed();
        TrainingStop stop = new TrainingStop();
        Interrupts.stopWith(stop::request);        // the ranks of a data-parallel run agree on the step (Trainer)
        // A terminal's Ctrl-C reaches the launcher and its ranks alike; the launcher passes it on as SIGTERM, once.
        if (System.getenv(Launcher.LAUNCHER_ENV) != null) Interrupts.ignore("INT", "HUP");
        try (BloomModel model = modelOptions.load();
             Collective collective = oneProcess ? Collective.SINGLE : C10dCollective.join(worker, modelOptions.loadOptions().device())) {
            PromptTuning tuning = PromptTuning.of(model).tokenizer(tok).virtualTokens(virtualTokens).init(PromptInit.parse(init))
                    .baseModel(modelOptions.model).task(spec).config(config).distributed(collective)
                    .listener(TrainingListener.console(System.out)).runMode(runMode()).stopOn(stop);
            if (initText != null) tuning.initText(initText);
            method(tuning);
            TrainedPrompt result = tuning.train(output);
            if (result.stopped()) {
                if (collective.isLeader()) System.out.println("stopped: continue this run with --resume");
                return Interrupts.exitCode() != 0 ? Interrupts.exitCode() : Interrupts.TERMINATED;
            }
            if (collective.isLeader()) {
                System.out.printf("done: %d steps, last loss %.4f%s; adapter %s, loss curve %s%n", result.steps(), result.lastLoss(),
                        result.evaluation() == null ? "" : String.format(", eval loss %.4f", result.evaluation().loss()), result.adapter(),
                        result.lossPlot());
            }
        }
        return 0;
    }

    /** {@code --nproc-per-node N}: checks the flags and the output, then runs N workers of this same command. */
    private int launch() throws Exception {
        if (nnodes < 1) throw new IllegalArgumentException("--nnodes must be at least 1, got " + nnodes);
        if (nodeRank < 0 || nodeRank >= nnodes) throw new IllegalArgumentException("--node-rank " + nodeRank + " is outside [0, " + nnodes + ")");
        if (masterPort < 1 || masterPort > 65535) throw new IllegalArgumentException("--master-port must lie in [1, 65535], got " + masterPort);
        if (threads < 0) throw new IllegalArgumentException("--threads must be >= 0, got " + threads);
        config();
        int perRank = threads > 0 ? threads : Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, nprocPerNode));
        List<String> args = new ArrayList<>(List.of("train"));
        args.addAll(withoutLauncherFlags(spec.commandLine().getParseResult().originalArgs()));
        // As torchrun: one rank per machine unless --nproc-per-node says more.
        Launcher.Plan plan = new Launcher.Plan(Launcher.thisJvm(Main.class.getName(), args), nodeRank, Math.max(1, nprocPerNode), nnodes, masterAddr,
                masterPort, perRank, Duration.ofSeconds(distTimeout));
        AtomicReference<Launcher.Stop> stop = new AtomicReference<>(Launcher.Stop.NONE);
        Interrupts.stopWith(() -> stop.set(Launcher.Stop.AFTER_STEP), () -> stop.set(Launcher.Stop.AT_ONCE));
        int code = Launcher.run(plan, System.out, System.err, stop::get);
        return stop.get() != Launcher.Stop.NONE ? Interrupts.exitCode() : code;
    }

    private static final java.util.Set<String> LAUNCHER_FLAGS = java.util.Set.of("--nproc-per-node", "--nnodes", "--node-rank",
            "--master-addr", "--master-port", "--threads");

    /** The user's arguments minus the launcher's own (the workers get those through torchrun's environment). */
    static List<String> withoutLauncherFlags(List<String> original) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < original.size(); i++) {
            String a = original.get(i);
            String name = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
            if (LAUNCHER_FLAGS.contains(name)) {
                if (!a.contains("=")) i++;
                continue;
            }
            if (i == 0 && a.equals("train")) continue;
            out.add(a);
        }
        return out;
    }

    /**
     * Checks the flags shared by both tasks and refuses an output directory that would lose a run,
     * before anything is read or loaded.
     */
    private TrainConfig config() {
        PromptInit promptInit = PromptInit.parse(init);
        if (promptInit == PromptInit.TEXT && (initText == null || initText.isEmpty())) throw new IllegalArgumentException("--init TEXT needs --init-text");
        if (promptInit != PromptInit.TEXT && initText != null) throw new IllegalArgumentException("--init-text needs --init TEXT");
        if (virtualTokens < 1 || virtualTokens > AdapterConfig.MAX_VIRTUAL_TOKENS) {
            throw new IllegalArgumentException("--virtual-tokens must lie in [1, " + AdapterConfig.MAX_VIRTUAL_TOKENS + "], got " + virtualTokens);
        }
        if (maxLength < 2) throw new IllegalArgumentException("--max-length must be at least 2, got " + maxLength);
        if (!(evalSplit >= 0 && evalSplit < 1)) throw new IllegalArgumentException("--eval-split must lie in [0, 1), got " + evalSplit);
        if (resume && overwrite) throw new IllegalArgumentException("--resume and --overwrite contradict each other");
        if (allowChanges && !resume) throw new IllegalArgumentException("--allow-changes only applies with --resume");
        checkMethod();
        TrainConfig config = Flags.named(() -> TrainConfig.builder().epochs(epochs).maxSteps(maxSteps).batchSize(batchSize)
                .gradAccumulation(accumulation).lr(lr).schedule(LrSchedule.Decay.parse(schedule)).warmupRatio(warmupRatio)
                .weightDecay(weightDecay).maxGradNorm(maxGradNorm).checkpointEvery(checkpointEvery).evalEvery(evalEvery)
                .reversePass(reversePass).maxMemory(maxMemory == null ? 0 : Flags.size(maxMemory, "--max-memory")).groupByLength(groupByLength).seed(seed).build());
        new RunDirectory(output).checkStart(runMode());
        return config;
    }

    /** The --peft-type and encoder flags onto the builder. */
    private PromptTuning method(PromptTuning tuning) {
        tuning.peftType(checkMethod()).prefixProjection(prefixProjection);
        if (encoderType != null) tuning.encoderType(EncoderType.parse(encoderType));
        if (encoderHiddenSize != null) tuning.encoderHiddenSize(encoderHiddenSize);
        return tuning;
    }

    /** --peft-type, each encoder flag refused where it does not apply, before anything loads. */
    private PeftType checkMethod() {
        PeftType type = PeftType.parse(peftType);
        if (encoderType != null && type != PeftType.P_TUNING) throw new IllegalArgumentException("--encoder-type needs --peft-type p-tuning");
        if (prefixProjection && type != PeftType.PREFIX_TUNING) throw new IllegalArgumentException("--prefix-projection needs --peft-type prefix");
        if (encoderHiddenSize != null && type == PeftType.PROMPT_TUNING) {
            throw new IllegalArgumentException("--encoder-hidden-size needs --peft-type p-tuning or prefix");
        }
        if (encoderHiddenSize != null && (encoderHiddenSize < 1 || encoderHiddenSize > EncoderConfig.MAX_HIDDEN)) {
            throw new IllegalArgumentException("--encoder-hidden-size must lie in [1, " + EncoderConfig.MAX_HIDDEN + "], got " + encoderHiddenSize);
        }
        if (type != PeftType.PROMPT_TUNING && (PromptInit.parse(init) != PromptInit.RANDOM || initText != null)) {
            throw new IllegalArgumentException("--init and --init-text apply to --peft-type prompt; " + type.flag() + " starts from its encoder's init");
        }
        if (encoderType != null) EncoderType.parse(encoderType);
        return type;
    }

    private RunMode runMode() {
        if (overwrite) return RunMode.OVERWRITE;
        if (resume) return allowChanges ? RunMode.RESUME_WITH_CHANGES : RunMode.RESUME;
        return RunMode.NEW;
    }

    private Tasks.Instructions instructions() {
        Tasks.Instructions spec = Tasks.instructions(read(data)).maxLength(maxLength).lossOnPrompt(lossOnPrompt).packing(packing)
                .paddingFree(!paddedBatches);
        if (template != null) spec.template(new PromptTemplate(template.replace("\\n", "\n")));
        return evalData != null ? spec.eval(read(evalData)) : spec.evalSplit(evalSplit);
    }

    private Tasks.Classification classification() {
        Tasks.Classification spec = Tasks.classification(ClassifyReader.read(data, true), Verbalizer.fromArgument(verbalizer)).maxLength(maxLength);
        return evalData != null ? spec.eval(ClassifyReader.read(evalData, true)) : spec.evalSplit(evalSplit);
    }

    /** Refuses, before the weights load, a run whose step cannot fit in the memory available. */
    private void checkMemory() {
        BloomConfig shape = BloomConfig.read(HfCheckpoint.config(modelOptions.dir()));
        MemoryEstimate.trainingStep(shape, modelOptions.loadOptions(), batchSize, maxLength + virtualTokens,
                        reversePass == ReversePass.AUTOGRAD)
                .requireFits("a training step of " + batchSize + " × " + (maxLength + virtualTokens) + " positions",
                        "--virtual-tokens, --batch-size or --max-length, or use --reverse-pass RECOMPUTE_BLOCKS or --int8");
    }

    private List<AlpacaRecord> read(Path file) {
        AlpacaReader.Result r = AlpacaReader.read(file, skipBadRows);
        if (!r.skipped().isEmpty()) {
            System.out.printf("skipped %d bad rows in %s, e.g. %s%n", r.skipped().size(), file, r.skipped().getFirst());
        }
        return r.records();
    }
}
