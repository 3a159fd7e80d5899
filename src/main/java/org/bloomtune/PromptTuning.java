package org.bloomtune;

import org.bloomtune.dist.Collective;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.EncoderConfig;
import org.bloomtune.peft.EncoderType;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.RunDirectory;
import org.bloomtune.train.RunMode;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.Trainer;
import org.bloomtune.train.TrainingStop;
import org.bloomtune.train.TrainingListener;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;

/**
 * Prompt tuning of a frozen BLOOM, start to finish — the library's entry point, as
 * {@code get_peft_model} + {@code Trainer} are in Python:
 *
 * <pre>{@code
 * TrainedPrompt result = PromptTuning.of(model)
 *         .tokenizer(tokenizer)
 *         .virtualTokens(10).initText("这是一段人与助手的对话：")
 *         .task(Tasks.instructions(records).evalSplit(0.05))
 *         .config(TrainConfig.builder().lr(3e-3).epochs(3).batchSize(4).build())
 *         .listener(TrainingListener.console(System.out))
 *         .train(Path.of("out/run"));
 * }</pre>
 *
 * The soft prompt is built from one spec, the adapter's PEFT config; training writes checkpoints,
 * {@code metrics.jsonl}, {@code loss.png} and the adapter into the run directory, and resumes
 * exactly from the newest checkpoint when asked ({@link #runMode}). The model stays frozen and is
 * the caller's to close.
 */
public final class PromptTuning {
    private final BloomModel model;
    private Tokenizer tokenizer;
    private int virtualTokens = 10;
    private PromptInit init = PromptInit.RANDOM;
    private String initText;
    private String baseModel;
    private PeftType peftType = PeftType.PROMPT_TUNING;
    private EncoderType encoderType = EncoderType.MLP;
    private int encoderHiddenSize;                // 0: the model's hidden size, PEFT's default
    private boolean prefixProjection;
    private TaskSpec task;
    private TrainConfig config = TrainConfig.builder().build();
    private TrainingListener listener = TrainingListener.SILENT;
    private RunMode runMode = RunMode.NEW;
    private Collective collective = Collective.SINGLE;
    private TrainingStop stop = new TrainingStop();

    private PromptTuning(BloomModel model) {
        this.model = Objects.requireNonNull(model, "model");
    }

    public static PromptTuning of(BloomModel model) { return new PromptTuning(model); }

    /** Encodes the task's records (and a TEXT init); required. */
    public PromptTuning tokenizer(Tokenizer t) { tokenizer = t; return this; }

    /** num_virtual_tokens (10 by default: the seed's). */
    public PromptTuning virtualTokens(int n) { virtualTokens = n; return this; }

    /** PEFT's prompt init; TEXT needs {@link #initText}. RANDOM by default. */
    public PromptTuning init(PromptInit i) { init = Objects.requireNonNull(i, "init"); return this; }

    /** TEXT init with this text, e.g. "这是一段人与助手的对话：". */
    public PromptTuning initText(String text) {
        init = PromptInit.TEXT;
        initText = text;
        return this;
    }

    /**
     * Which member of PEFT's continuous-prompt family to train: PROMPT_TUNING (default), P_TUNING
     * (the prompt from an MLP or LSTM encoder, {@link #encoderType}) or PREFIX_TUNING (keys and
     * values in every layer, optionally {@link #prefixProjection projected}). The init options
     * apply to prompt tuning only.
     */
    public PromptTuning peftType(PeftType t) { peftType = Objects.requireNonNull(t, "peftType"); return this; }

    /** P-tuning's encoder_reparameterization_type (MLP by default, as PEFT). */
    public PromptTuning encoderType(EncoderType t) { encoderType = Objects.requireNonNull(t, "encoderType"); return this; }

    /** encoder_hidden_size of P-tuning's encoder or the prefix projection; the model's hidden size by default, as PEFT. */
    public PromptTuning encoderHiddenSize(int n) { encoderHiddenSize = n; return this; }

    /** Prefix tuning through PEFT's Linear–Tanh–Linear projection (prefix_projection). */
    public PromptTuning prefixProjection(boolean on) { prefixProjection = on; return this; }

    /** {@code base_model_name_or_path} in the adapter's config (a hub id or the model's directory). */
    public PromptTuning baseModel(String nameOrPath) { baseModel = nameOrPath; return this; }

    public PromptTuning task(TaskSpec t) { task = t; return this; }

    /** Everything else about the run; the seed recipe's defaults otherwise. */
    public PromptTuning config(TrainConfig c) { config = Objects.requireNonNull(c, "config"); return this; }

    public PromptTuning listener(TrainingListener l) { listener = Objects.requireNonNull(l, "listener"); return this; }

    /** What to do with an earlier run in the output directory (NEW refuses it). */
    public PromptTuning runMode(RunMode m) { runMode = Objects.requireNonNull(m, "runMode"); return this; }

    /**
     * Makes this process one rank of a data-parallel run ({@code C10dCollective.join}): the global
     * batch is {@code batchSize} × the world size; rank 0 alone writes. Single process by default.
     */
    public PromptTuning distributed(Collective c) { collective = Objects.requireNonNull(c, "collective"); return this; }

    /**
     * Lets {@code stop} end the run at the next step boundary (from another thread, a signal
     * handler, a UI): the step reached is checkpointed for {@link RunMode#RESUME} and the result
     * says {@link TrainedPrompt#stopped()}.
     */
    public PromptTuning stopOn(TrainingStop s) { stop = Objects.requireNonNull(s, "stop"); return this; }

    /** The adapter config this run will write: checks num_virtual_tokens and the init before any work. */
    public AdapterConfig adapterConfig() {
        if (peftType != PeftType.PROMPT_TUNING && init != PromptInit.RANDOM) {
            throw new IllegalArgumentException("prompt init " + init + " applies to prompt tuning; " + peftType + " starts from its encoder's init");
        }
        if (peftType != PeftType.P_TUNING && encoderType != EncoderType.MLP) throw new IllegalArgumentException("the encoder type applies to P-tuning only");
        if (peftType != PeftType.PREFIX_TUNING && prefixProjection) throw new IllegalArgumentException("prefix projection applies to prefix tuning only");
        if (peftType == PeftType.PROMPT_TUNING && encoderHiddenSize != 0) throw new IllegalArgumentException("the encoder hidden size applies to P-tuning and prefix tuning");
        int hidden = encoderHiddenSize == 0 ? model.config().hiddenSize() : encoderHiddenSize;
        return switch (peftType) {
            case PROMPT_TUNING -> AdapterConfig.forModel(model.config(), virtualTokens, init, initText, baseModel);
            case P_TUNING -> AdapterConfig.withEncoder(model.config(), peftType, virtualTokens, EncoderConfig.pTuning(encoderType, hidden), baseModel);
            case PREFIX_TUNING -> AdapterConfig.withEncoder(model.config(), peftType, virtualTokens, EncoderConfig.prefix(prefixProjection, hidden), baseModel);
        };
    }

    /** Trains into {@code outputDir} and returns where the adapter is and how the run went. */
    public TrainedPrompt train(Path outputDir) {
        if (tokenizer == null) throw new IllegalArgumentException("tokenizer must be given");
        if (task == null) throw new IllegalArgumentException("task must be given (Tasks.instructions or Tasks.classification)");
        AdapterConfig adapter = adapterConfig();
        TrainConfig run = config.withOutput(Objects.requireNonNull(outputDir, "outputDir"));
        if (collective.isLeader()) new RunDirectory(outputDir).checkStart(runMode);
        return train(task.prepare(model, tokenizer), adapter, run);
    }

    private static String describe(AdapterConfig a) {
        return switch (a.peftType()) {
            case PROMPT_TUNING -> a.init() + " init";
            case P_TUNING -> a.encoder().type() + " encoder, hidden " + a.encoder().hiddenSize();
            case PREFIX_TUNING -> a.encoder().prefixProjection() ? "projection, hidden " + a.encoder().hiddenSize() : "no projection";
        };
    }

    private <E> TrainedPrompt train(TaskSpec.Prepared<E> prepared, AdapterConfig adapter, TrainConfig run) {
        TrainingListener say = collective.isLeader() ? listener : TrainingListener.SILENT;
        try (SoftPrompt prompt = SoftPrompt.init(model, adapter, tokenizer, run.seed())) {
            long trainable = prompt.weight().numel();
            say.onMessage(String.format(Locale.ROOT, "%d training and %d eval examples%s; %s, %d virtual tokens (%s); %,d trainable of %,d parameters (%.5f %%)",
                    prepared.train().size(), prepared.eval().size(), prepared.eval().isEmpty() ? " (no evaluation)" : "", adapter.peftType(),
                    adapter.numVirtualTokens(), describe(adapter), trainable, model.parameterCount(), 100.0 * trainable / model.parameterCount()));
            Trainer.Summary s = new Trainer<>(prepared.task(), run, adapter, listener, collective).stopOn(stop)
                    .train(prompt, prepared.train(), prepared.eval(), runMode);
            String report = collective.isLeader() && !s.stopped() ? prepared.finish(prompt, s.adapter(), run.batchSize()) : "";
            if (!report.isEmpty()) listener.onMessage(report);
            return new TrainedPrompt(s.adapter(), run.output(), s.steps(), s.lastLoss(), s.eval(), report, s.stopped());
        }
    }
}
