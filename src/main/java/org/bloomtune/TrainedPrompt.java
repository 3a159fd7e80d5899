package org.bloomtune;

import org.bloomtune.train.Evaluation;

import java.nio.file.Path;

/**
 * The outcome of {@link PromptTuning#train}.
 *
 * @param adapter    the PEFT adapter directory (for a classifier with its {@code verbalizer.json}); after a stop, the
 *                   newest checkpoint's (null if no step was done)
 * @param run        the run directory: checkpoints, {@code metrics.jsonl}, {@code loss.png}
 * @param steps      optimizer steps done
 * @param lastLoss   the last step's training loss
 * @param evaluation the final evaluation, or null without eval data
 * @param report     the task's closing report (classification: accuracy against the majority class), or ""
 * @param stopped    the run ended early on a {@link org.bloomtune.train.TrainingStop} request: no final evaluation or
 *                   report; continue it with {@link org.bloomtune.train.RunMode#RESUME}
 */
public record TrainedPrompt(Path adapter, Path run, int steps, double lastLoss, Evaluation evaluation, String report, boolean stopped) {
    public Path metrics() { return run.resolve("metrics.jsonl"); }

    public Path lossPlot() { return run.resolve("loss.png"); }
}
