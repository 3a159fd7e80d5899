package org.bloomtune.train;

import com.google.gson.JsonObject;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.data.BatchOrder;
import org.bloomtune.dist.C10dCollective.PeerFailure;
import org.bloomtune.dist.Collective;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.PeakAboveLoad;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Prompt tuning: AdamW on the soft prompt alone, the backbone frozen. Gradient accumulation,
 * clipping, warmup and decay, evaluation, atomic checkpoints and exact resume (the prompt, the
 * optimizer moments, the step and the data position are restored; the data order is rebuilt from
 * the seed). A non-finite loss stops the run, naming the step, with the last good checkpoint kept.
 * What is optimized — the causal-LM loss, a verbalizer's label cross-entropy — is the
 * {@link TrainingTask}'s business.
 *
 * @param <E> the task's encoded example
 */
public final class Trainer<E> {
    private final TrainingTask<E> task;
    private final TrainConfig config;
    private final AdapterConfig adapterConfig;
    private final TrainingListener listener;
    private final DataParallel ranks;
    private final boolean leader;
    private ReversePass pass;
    private TrainingStop stop = new TrainingStop();

    public Trainer(TrainingTask<E> task, TrainConfig config, AdapterConfig adapterConfig, TrainingListener listener) {
        this(task, config, adapterConfig, listener, Collective.SINGLE);
    }

    /**
     * A trainer that is one rank of a data-parallel run: every global batch ({@code batchSize} ×
     * world) is split across the ranks, gradients and losses are summed over them, and only rank 0
     * reports and writes (checkpoints, metrics, the loss curve, the adapter).
     */
    public Trainer(TrainingTask<E> task, TrainConfig config, AdapterConfig adapterConfig, TrainingListener listener, Collective collective) {
        this.task = task;
        this.config = config;
        this.adapterConfig = adapterConfig;
        this.ranks = new DataParallel(collective);
        this.leader = collective.isLeader();
        this.listener = leader ? listener : TrainingListener.SILENT;
    }

    /**
     * Lets {@code stop} end the run early: it is checked before the first step and after every
     * optimizer step, on every rank alike (a data-parallel run agrees on it through the collective).
     */
    public Trainer<E> stopOn(TrainingStop stop) {
        this.stop = Objects.requireNonNull(stop, "stop");
        return this;
    }

    /** Thrown when the loss stops being finite. */
    public static final class DivergedException extends RuntimeException {
        DivergedException(String message) { super(message); }
    }

    /** The run's outcome; {@code eval} is null when there was no eval data. */
    public record Summary(int steps, double lastLoss, Evaluation eval, Path adapter, boolean stopped) {
        public double evalLoss() { return eval == null ? Double.NaN : eval.loss(); }
    }

    /**
     * Trains {@code prompt} in place on {@code train}, evaluating on {@code eval} (may be empty).
     * {@code mode} says what to do with an earlier run in the output directory: refuse it, replace
     * it, or continue it from its newest checkpoint.
     */
    public Summary train(SoftPrompt prompt, List<E> train, List<E> eval, RunMode mode) {
        if (train.isEmpty()) throw new IllegalArgumentException("no training examples");
        if (config.output() == null) throw new IllegalArgumentException("output must be given (the run directory)");
        int world = ranks.worldSize();
        BatchOrder order = new BatchOrder(config.batchSize() * world, config.seed(), config.groupByLength());
        int batchesPerEpoch = (train.size() + config.batchSize() * world - 1) / (config.batchSize() * world);
        int stepsPerEpoch = (batchesPerEpoch + config.accumulation() - 1) / config.accumulation();
        int total = config.maxSteps() > 0 ? config.maxSteps() : Math.toIntExact(Math.min(Integer.MAX_VALUE, (long) config.epochs() * stepsPerEpoch));
        LrSchedule schedule = new LrSchedule(config.lr(), (int) Math.round(config.warmupRatio() * total), total, config.decay());
        RunSettings settings = RunSettings.of(config, adapterConfig, task, train, eval);
        MetricsLog metrics = new MetricsLog(config.output());
        ReversePassChoice choice = choosePass(prompt, train);
        pass = choice.pass();
        PeakAboveLoad memory = PeakAboveLoad.start();
        Start start = start(prompt, mode, total, settings, metrics);
        TrainingState state = start.state();
        if (state.step() == 0 && !eval.isEmpty()) evaluate(prompt, eval, 0, metrics);   // the baseline the run improves on
        double lastLoss = Double.NaN;
        int firstStep = state.step();
        try (AdamW optimizer = start.optimizer()) {
            int step = state.step();
            int epoch = state.epoch();
            int batchIndex = state.batchInEpoch();
            boolean stopped = stopRequested();
            while (step < total && !stopped) {
                List<List<Integer>> batches = order.epoch(train, task::length, epoch);
                double lossSum = 0;
                long tokens = 0;
                long padded = 0;
                long lossTerms = 0;
                int micro = 0;
                long began = System.nanoTime();
                prompt.zeroGrad();
                for (; batchIndex < batches.size() && step < total && !stopped; batchIndex++) {
                    List<E> batch = pick(train, batches.get(batchIndex));
                    lossSum += shardLossAndGrad(prompt, batch);
                    tokens += batch.stream().mapToLong(task::length).sum();
                    padded += paddedTokens(batch);
                    lossTerms += task.lossTerms(prompt, batch);
                    micro++;
                    boolean stepNow = micro == config.accumulation() || batchIndex == batches.size() - 1;
                    if (!stepNow) continue;
                    step++;
                    long reduceStart = System.nanoTime();
                    double loss = ranks.sumGradientAndLoss(prompt, lossSum) / micro;
                    double commSeconds = (System.nanoTime() - reduceStart) / 1e9;
                    if (!Double.isFinite(loss)) {
                        throw new DivergedException("loss became " + loss + " at step " + step + "; the last good checkpoint is "
                                + Checkpoints.latest(config.output()).map(Path::toString).orElse("(none yet)"));
                    }
                    double lr = schedule.rate(step);
                    double gradNorm = update(prompt, optimizer, micro, lr);
                    double seconds = (System.nanoTime() - began) / 1e9;
                    lastLoss = loss;
                    if (leader) {
                        metrics.append(record(step, epoch, loss, lr, gradNorm, seconds, new StepTokens(tokens, padded, lossTerms),
                                ranks.isDistributed() ? commSeconds : 0));
                    }
                    listener.onStep(step, total, firstStep, loss, tokens / seconds);
                    stopped = stopRequested();
                    if (step % config.checkpointEvery() == 0 || step == total || stopped) {
                        checkpoint(prompt, optimizer, new TrainingState(step, epoch, batchIndex + 1, total, config.seed()), settings);
                    }
                    if (!stopped && config.evalEvery() > 0 && step % config.evalEvery() == 0 && !eval.isEmpty()) evaluate(prompt, eval, step, metrics);
                    lossSum = 0;
                    tokens = 0;
                    padded = 0;
                    lossTerms = 0;
                    micro = 0;
                    began = System.nanoTime();
                    prompt.zeroGrad();
                }
                if (batchIndex >= batches.size()) {
                    epoch++;
                    batchIndex = 0;
                }
            }
            if (leader && step > firstStep) listener.onMessage("memory peak " + memory.describe(choice.estimatedAboveLoad()));
            if (stopped) return stoppedAt(step, total, firstStep, lastLoss, metrics);
            Evaluation last = eval.isEmpty() ? null : evaluate(prompt, eval, step, metrics);
            Path adapter = config.output().resolve("adapter");
            if (leader) {
                PeftAdapter.save(adapter, adapterConfig, prompt);
                LossPlot.write(config.output().resolve("loss.png"), metrics.read());
            }
            ranks.barrier("the end of training");
            return new Summary(step, lastLoss, last, adapter, false);
        }
    }

    private void checkpoint(SoftPrompt prompt, AdamW optimizer, TrainingState state, RunSettings settings) {
        ranks.checkSameState(prompt, optimizer, state.step());
        if (leader) Checkpoints.save(config.output(), adapterConfig, prompt, optimizer, state, settings);
    }

    /** Whether any rank was asked to stop: one rank stopping alone would leave the others waiting in the next all-reduce. */
    private boolean stopRequested() { return ranks.anyRank(stop.requested(), "the stop request"); }

    /** A run stopped on request: its last step is in a checkpoint (none if it stopped before a step); no final evaluation or adapter. */
    private Summary stoppedAt(int step, int total, int firstStep, double lastLoss, MetricsLog metrics) {
        Path checkpoint = step > firstStep ? Checkpoints.of(config.output(), step) : null;      // the stop checkpointed that step
        if (leader) {
            if (step > firstStep) LossPlot.write(config.output().resolve("loss.png"), metrics.read());
            listener.onMessage("stopped on request after step " + step + " of " + total
                    + (checkpoint == null ? " (no step done in this process: nothing saved)" : "; checkpoint " + checkpoint));
        }
        ranks.barrier("a stop on request");
        return new Summary(step, lastLoss, null, checkpoint == null ? null : checkpoint.resolve("adapter"), true);
    }

    /** Where the run starts: step 0, or the newest checkpoint — read by rank 0 and sent to every rank. */
    private record Start(TrainingState state, AdamW optimizer) {}

    private Start start(SoftPrompt prompt, RunMode mode, int total, RunSettings settings, MetricsLog metrics) {
        TrainingState state = new TrainingState(0, 0, 0, total, config.seed());
        AdamW adam = null;
        RuntimeException refused = null;
        if (leader) {
            try {
                RunDirectory run = new RunDirectory(config.output());
                run.prepare(mode);
                Optional<Path> checkpoint = mode.resumes() ? run.latestCheckpoint() : Optional.empty();
                if (checkpoint.isPresent()) {
                    checkSettings(checkpoint.get(), settings, mode);
                    state = TrainingState.read(checkpoint.get());
                    restorePrompt(prompt, checkpoint.get());
                    adam = Checkpoints.loadOptimizer(checkpoint.get(), config.weightDecay());
                    metrics.truncateAfter(state.step());
                    listener.onMessage("resuming from " + checkpoint.get() + " (step " + state.step() + ")");
                } else {
                    if (mode.resumes()) listener.onMessage("no checkpoint in " + config.output() + ": starting from step 0");
                    metrics.truncateAfter(-1);
                }
            } catch (RuntimeException e) {
                refused = e;
            }
        }
        if (adam == null) {
            try (Tensor w = prompt.weight().detach()) {
                adam = new AdamW(w, config.weightDecay());
            }
        }
        if (!ranks.isDistributed()) {
            if (refused != null) throw refused;
            return new Start(state, adam);
        }
        ranks.agreeOnSettings(settings);
        // Rank 0's verdict and state, then the prompt and the moments, to every rank.
        double[] got = ranks.fromLeader(new double[]{refused == null ? 0 : 1, state.step(), state.epoch(), state.batchInEpoch(), adam.steps()},
                "the run's starting point");
        if (refused != null) throw refused;
        if (got[0] != 0) throw new PeerFailure("rank " + ranks.rank() + ": rank 0 refused to start the run (its message says why)", null);
        state = new TrainingState((int) got[1], (int) got[2], (int) got[3], total, config.seed());
        return new Start(state, ranks.startFromLeader(prompt, adam, (long) got[4], config.weightDecay()));
    }

    /**
     * This rank's share of a global batch: its slice of the rows, its loss weighted by the share of
     * the batch's loss terms it holds (so the sum over ranks is the mean over the whole batch), and
     * the matching gradient added to the prompt's. One process computes the whole batch as before.
     */
    private double shardLossAndGrad(SoftPrompt prompt, List<E> batch) {
        if (!ranks.isDistributed()) return task.lossAndGrad(prompt, batch, pass);
        int per = config.batchSize();
        int from = Math.min(batch.size(), ranks.rank() * per);
        List<E> shard = batch.subList(from, Math.min(batch.size(), from + per));
        if (shard.isEmpty()) return 0;
        double weight = (double) task.lossTerms(prompt, shard) / task.lossTerms(prompt, batch);
        try (PointerScope scope = new PointerScope(); Tensor before = snapshot(prompt)) {
            double loss = task.lossAndGrad(prompt, shard, pass);
            try (GradMode off = GradMode.off(); Tensor grad = prompt.grad()) {
                // grad = before + weight · (grad − before): this shard's contribution scaled in place.
                grad.sub_(before).mul_(new Scalar(weight)).add_(before);
            }
            return loss * weight;
        }
    }

    private static Tensor snapshot(SoftPrompt prompt) {
        try (Tensor g = prompt.grad()) {
            return g.defined() ? g.detach().clone() : org.bytedeco.pytorch.global.torch.zeros_like(prompt.weight().detach());
        }
    }

    /** Averages the accumulated gradient, clips it, and steps AdamW; returns the norm before clipping. */
    private double update(SoftPrompt prompt, AdamW adam, int micro, double lr) {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor grad = prompt.grad().div(new Scalar((double) micro));
            double norm = AdamW.norm(grad);
            if (config.maxGradNorm() > 0 && norm > config.maxGradNorm()) grad = grad.mul(new Scalar(config.maxGradNorm() / (norm + 1e-6)));
            adam.step(prompt.weight(), grad, lr);
            return norm;
        }
    }

    /** Scores the prompt on {@code eval}, logs the metrics and prints the report. */
    Evaluation evaluate(SoftPrompt prompt, List<E> eval, int step, MetricsLog metrics) {
        Evaluation e = !ranks.isDistributed() ? task.evaluate(prompt, eval, config.batchSize()) : shardedEvaluation(prompt, eval);
        JsonObject r = new JsonObject();
        r.addProperty("step", step);
        r.addProperty("eval_loss", e.loss());
        new java.util.TreeMap<>(e.metrics()).forEach(r::addProperty);
        if (leader) metrics.append(r);
        listener.onEvaluation(step, e);
        return e;
    }

    /** Each rank scores its slice of the eval data; the statistics are summed over ranks. */
    private Evaluation shardedEvaluation(SoftPrompt prompt, List<E> eval) {
        int world = ranks.worldSize();
        int from = (int) ((long) eval.size() * ranks.rank() / world);
        int to = (int) ((long) eval.size() * (ranks.rank() + 1) / world);
        return task.evaluation(ranks.sum(task.evaluationSums(prompt, eval.subList(from, to), config.batchSize()), "the evaluation"));
    }

    /** Refuses (or, allowed, reports) settings that differ from the checkpoint's. */
    private void checkSettings(Path checkpoint, RunSettings now, RunMode mode) {
        List<RunSettings.Change> changes = now.changesSince(RunSettings.read(checkpoint));
        if (changes.isEmpty()) return;
        if (mode == RunMode.RESUME) throw new ResumeMismatchException(checkpoint, changes);
        listener.onMessage("resuming with changed settings (no longer an exact resume): "
                + String.join("; ", changes.stream().map(RunSettings.Change::toString).toList()));
    }

    private static void restorePrompt(SoftPrompt prompt, Path checkpoint) {
        try (PeftAdapter.Loaded saved = PeftAdapter.load(checkpoint.resolve("adapter"));
             PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            SoftPrompt s = saved.prompt();
            // the names say whether there is an encoder and which; the shape, how large
            boolean same = s.type() == prompt.type() && Arrays.equals(Tensors.shape(s.weight()), Tensors.shape(prompt.weight()))
                    && s.namedParameters().keySet().equals(prompt.namedParameters().keySet());
            if (!same) {
                throw new IllegalArgumentException(checkpoint + " holds a " + s.type() + " prompt of " + s.numVirtualTokens() + " × "
                        + s.tokenDim() + " (trainable " + Tensors.shapeString(s.weight()) + "), this run trains a "
                        + prompt.type() + " prompt of " + prompt.numVirtualTokens() + " × " + prompt.tokenDim() + " (trainable "
                        + Tensors.shapeString(prompt.weight())
                        + "): the prompt type, num_virtual_tokens, the encoder or the model changed, so it cannot be resumed, only overwritten");
            }
            prompt.weight().copy_(s.weight());
        }
    }

    private static <E> List<E> pick(List<E> all, List<Integer> indices) {
        List<E> out = new ArrayList<>(indices.size());
        for (int i : indices) out.add(all.get(i));
        return out;
    }

    /**
     * Resolves {@link ReversePass#AUTO} for the longest training example in a full micro-batch (the
     * worst step the run can meet) and says what was taken and why.
     */
    private ReversePassChoice choosePass(SoftPrompt prompt, List<E> train) {
        int longest = train.stream().mapToInt(task::length).max().orElse(1);
        ReversePassChoice choice = ReversePassChoice.choose(config.pass(), task.model(), config.batchSize(),
                longest + prompt.numVirtualTokens(), config.memoryBudget());
        listener.onMessage(choice.reason());
        return choice;
    }

    /** Positions the model computes for {@code batch}, rank by rank ({@link TrainingTask#computedPositions}). */
    private long paddedTokens(List<E> batch) {
        long padded = 0;
        for (int from = 0; from < batch.size(); from += config.batchSize()) {
            List<E> shard = batch.subList(from, Math.min(batch.size(), from + config.batchSize()));
            padded += task.computedPositions(shard);
        }
        return padded;
    }

    /** Tokens of one optimizer step: real (unpadded), as computed (padded), and what the loss averages (labelled tokens, or texts). */
    private record StepTokens(long real, long padded, long lossTerms) {}

    private JsonObject record(int step, int epoch, double loss, double lr, double gradNorm, double seconds, StepTokens tokens, double commSeconds) {
        JsonObject r = new JsonObject();
        r.addProperty("step", step);
        r.addProperty("epoch", epoch);
        r.addProperty("loss", loss);
        r.addProperty("lr", lr);
        r.addProperty("grad_norm", gradNorm);
        r.addProperty("tokens_per_s", tokens.real() / seconds);
        r.addProperty("seconds", seconds);
        r.addProperty("tokens", tokens.real());
        r.addProperty("padded_tokens", tokens.padded());
        r.addProperty("loss_terms", tokens.lossTerms());
        r.addProperty("reverse_pass", pass.name());
        r.addProperty("comm_seconds", commSeconds);
        ProcessMemory.peakResidentMib().ifPresent(mib -> r.addProperty("peak_rss_mib", mib));
        return r;
    }
}
