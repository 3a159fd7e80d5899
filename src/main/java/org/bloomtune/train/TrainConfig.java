package org.bloomtune.train;

import org.bloomtune.autograd.ReversePass;

import java.nio.file.Path;

/**
 * Everything a training run needs besides model, data and prompt. The seed's defaults: batch 4,
 * 3 epochs, lr 3e-3 (soft prompts need a high rate).
 *
 * @param output          run directory: checkpoints, metrics.jsonl, loss.png, the final adapter
 * @param epochs          passes over the data (when maxSteps is 0)
 * @param maxSteps        stop after this many optimizer steps; 0 = run the epochs
 * @param batchSize       examples per micro-batch
 * @param accumulation    micro-batches per optimizer step
 * @param warmupRatio     share of the steps spent warming up
 * @param maxGradNorm     clip the prompt gradient to this L2 norm; 0 = off
 * @param checkpointEvery optimizer steps between checkpoints (one is always written at the end)
 * @param evalEvery       optimizer steps between evaluations on the eval split; 0 = at the end only
 * @param seed            data order and prompt init
 */
public record TrainConfig(Path output, int epochs, int maxSteps, int batchSize, int accumulation, double lr,
                          LrSchedule.Decay decay, double warmupRatio, double weightDecay, double maxGradNorm,
                          int checkpointEvery, int evalEvery, ReversePass pass, boolean groupByLength, long seed) {

    public TrainConfig {
        if (epochs < 1 && maxSteps < 1) throw new IllegalArgumentException("--epochs or --max-steps must be at least 1");
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        if (accumulation < 1) throw new IllegalArgumentException("--grad-accumulation must be at least 1, got " + accumulation);
        if (!(warmupRatio >= 0 && warmupRatio < 1)) throw new IllegalArgumentException("--warmup-ratio must lie in [0, 1), got " + warmupRatio);
        if (maxGradNorm < 0) throw new IllegalArgumentException("--max-grad-norm must be >= 0, got " + maxGradNorm);
        if (checkpointEvery < 1) throw new IllegalArgumentException("--checkpoint-every must be at least 1, got " + checkpointEvery);
    }
}
