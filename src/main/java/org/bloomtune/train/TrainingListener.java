package org.bloomtune.train;

import org.bloomtune.io.ProgressBar;

import java.io.PrintStream;

/**
 * What a training run reports while it runs: plain messages (the plan, a resume, a final report),
 * each optimizer step, each evaluation. Every method has an empty default; {@link #SILENT} hears
 * nothing, {@link #console} prints as the CLI does.
 */
public interface TrainingListener {
    TrainingListener SILENT = new TrainingListener() {};

    /** A line for the user: what will be trained, that a run resumes, a final report. */
    default void onMessage(String line) {}

    /**
     * Optimizer step {@code step} of {@code total} is done.
     *
     * @param firstStep the step this process started from (not 0 after a resume), for the ETA
     */
    default void onStep(int step, int total, int firstStep, double loss, double tokensPerSecond) {}

    /** The prompt was evaluated after {@code step} optimizer steps (0: before training). */
    default void onEvaluation(int step, Evaluation evaluation) {}

    /** Messages as lines, steps as a progress bar (redrawn on a terminal, a line now and then in a log), evaluations as reports. */
    static TrainingListener console(PrintStream out) {
        return new TrainingListener() {
            private ProgressBar bar;

            @Override
            public void onMessage(String line) { out.println(line); }

            @Override
            public void onStep(int step, int total, int firstStep, double loss, double tokensPerSecond) {
                if (bar == null) bar = ProgressBar.forStream(out, total);
                bar.update(step, loss, tokensPerSecond, firstStep);
            }

            @Override
            public void onEvaluation(int step, Evaluation e) { out.printf("%neval at step %d: %s%n", step, e.report()); }
        };
    }
}
