package org.bloomtune.train;

import org.bloomtune.autograd.ReversePass;

import java.nio.file.Path;

/**
 * Everything a training run needs besides model, data and prompt. Build it with
 * {@link #builder()}; the defaults are the seed recipe's (batch 4, 3 epochs, lr 3e-3 — soft prompts
 * need a high rate — linear decay, gradient norm clipped to 1). Invalid values are refused with a
 * message that starts with the field's name.
 *
 * @param output          run directory: checkpoints, metrics.jsonl, loss.png, the final adapter
 *                        (may stay unset when {@code PromptTuning.train(dir)} gives it)
 * @param epochs          passes over the data (when maxSteps is 0)
 * @param maxSteps        stop after this many optimizer steps; 0 = run the epochs
 * @param batchSize       examples per micro-batch
 * @param accumulation    micro-batches per optimizer step
 * @param lr              peak learning rate
 * @param decay           how the rate falls after warmup
 * @param warmupRatio     share of the steps spent warming up
 * @param weightDecay     AdamW's decoupled weight decay
 * @param maxGradNorm     clip the prompt gradient to this L2 norm; 0 = off
 * @param checkpointEvery optimizer steps between checkpoints (one is always written at the end)
 * @param evalEvery       optimizer steps between evaluations on the eval split; 0 = at the end only
 * @param pass            how the prompt gradient is computed; AUTO (the default) picks it by memory
 * @param maxMemory       bytes a step may use, weights included, when AUTO picks the pass; 0 = the
 *                        default, {@link ReversePassChoice#DEFAULT_MEMORY_SHARE} of physical memory
 * @param groupByLength   batch examples of similar length together (less padding)
 * @param seed            data order and prompt init
 */
public record TrainConfig(Path output, int epochs, int maxSteps, int batchSize, int accumulation, double lr,
                          LrSchedule.Decay decay, double warmupRatio, double weightDecay, double maxGradNorm,
                          int checkpointEvery, int evalEvery, ReversePass pass, long maxMemory, boolean groupByLength, long seed) {

    public TrainConfig {
        if (epochs < 0) throw new IllegalArgumentException("epochs must be >= 0, got " + epochs);
        if (maxSteps < 0) throw new IllegalArgumentException("max_steps must be >= 0 (0: run the epochs), got " + maxSteps);
        if (epochs < 1 && maxSteps < 1) throw new IllegalArgumentException("epochs or max_steps must be at least 1");
        if (batchSize < 1) throw new IllegalArgumentException("batch_size must be at least 1, got " + batchSize);
        if (accumulation < 1) throw new IllegalArgumentException("grad_accumulation must be at least 1, got " + accumulation);
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr must be a positive number, got " + lr);
        if (decay == null) throw new IllegalArgumentException("schedule must be given");
        if (!(warmupRatio >= 0 && warmupRatio < 1)) throw new IllegalArgumentException("warmup_ratio must lie in [0, 1), got " + warmupRatio);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) throw new IllegalArgumentException("weight_decay must be >= 0, got " + weightDecay);
        if (!(maxGradNorm >= 0) || !Double.isFinite(maxGradNorm)) throw new IllegalArgumentException("max_grad_norm must be >= 0, got " + maxGradNorm);
        if (checkpointEvery < 1) throw new IllegalArgumentException("checkpoint_every must be at least 1, got " + checkpointEvery);
        if (evalEvery < 0) throw new IllegalArgumentException("eval_every must be >= 0 (0: at the end only), got " + evalEvery);
        if (pass == null) throw new IllegalArgumentException("reverse_pass must be given");
        if (maxMemory < 0) throw new IllegalArgumentException("max_memory must be >= 0 (0: the default share of physical memory), got " + maxMemory);
    }

    public static Builder builder() { return new Builder(); }

    /** This config writing into {@code dir} instead. */
    public TrainConfig withOutput(Path dir) {
        return new TrainConfig(dir, epochs, maxSteps, batchSize, accumulation, lr, decay, warmupRatio, weightDecay, maxGradNorm,
                checkpointEvery, evalEvery, pass, maxMemory, groupByLength, seed);
    }

    /** The memory budget AUTO holds the step to: {@code maxMemory}, or the default share of physical memory. */
    public long memoryBudget() {
        return maxMemory > 0 ? maxMemory : ReversePassChoice.defaultBudget();
    }

    /** A builder starting from the seed recipe's values. */
    public static final class Builder {
        private Path output;
        private int epochs = 3;
        private int maxSteps;
        private int batchSize = 4;
        private int accumulation = 1;
        private double lr = 3e-3;
        private LrSchedule.Decay decay = LrSchedule.Decay.LINEAR;
        private double warmupRatio;
        private double weightDecay;
        private double maxGradNorm = 1.0;
        private int checkpointEvery = 50;
        private int evalEvery;
        private ReversePass pass = ReversePass.AUTO;
        private long maxMemory;
        private boolean groupByLength;
        private long seed = 42;

        private Builder() {}

        public Builder output(Path v) { output = v; return this; }
        public Builder epochs(int v) { epochs = v; return this; }
        public Builder maxSteps(int v) { maxSteps = v; return this; }
        public Builder batchSize(int v) { batchSize = v; return this; }
        public Builder gradAccumulation(int v) { accumulation = v; return this; }
        public Builder lr(double v) { lr = v; return this; }
        public Builder schedule(LrSchedule.Decay v) { decay = v; return this; }
        public Builder warmupRatio(double v) { warmupRatio = v; return this; }
        public Builder weightDecay(double v) { weightDecay = v; return this; }
        public Builder maxGradNorm(double v) { maxGradNorm = v; return this; }
        public Builder checkpointEvery(int v) { checkpointEvery = v; return this; }
        public Builder evalEvery(int v) { evalEvery = v; return this; }
        public Builder reversePass(ReversePass v) { pass = v; return this; }
        public Builder maxMemory(long bytes) { maxMemory = bytes; return this; }
        public Builder groupByLength(boolean v) { groupByLength = v; return this; }
        public Builder seed(long v) { seed = v; return this; }

        public TrainConfig build() {
            return new TrainConfig(output, epochs, maxSteps, batchSize, accumulation, lr, decay, warmupRatio, weightDecay,
                    maxGradNorm, checkpointEvery, evalEvery, pass, maxMemory, groupByLength, seed);
        }
    }
}
