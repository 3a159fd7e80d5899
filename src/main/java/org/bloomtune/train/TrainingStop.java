package org.bloomtune.train;

/**
 * A request, from any thread, that a training run stop at the next step boundary — what
 * transformers' {@code TrainerControl.should_training_stop} is to a callback. The run then saves a
 * checkpoint of the step it reached (an exact resume continues from it) and returns; a step in
 * progress is finished first, so nothing is half-written and no native call is cut short.
 */
public final class TrainingStop {
    private volatile boolean requested;

    /** Asks the run to stop after its current step; safe from a signal handler or another thread, repeatable. */
    public void request() { requested = true; }

    public boolean requested() { return requested; }
}
