package org.bloomtune.train;

import org.bloomtune.autograd.ReversePass;
import org.bloomtune.peft.SoftPrompt;

import java.util.List;

/**
 * What a prompt-tuning run optimizes, seen from the {@link Trainer}: how a micro-batch of examples
 * becomes a loss and a prompt gradient, and how held-out examples are scored. The trainer owns
 * everything else — order, accumulation, clipping, schedule, checkpoints, resume.
 *
 * @param <E> one encoded example
 */
public interface TrainingTask<E> {

    /** Tokens in the example, for grouping batches by length and for throughput. */
    int length(E example);

    /**
     * The mean loss of {@code batch}; its gradient is added to {@code prompt.grad()}.
     */
    double lossAndGrad(SoftPrompt prompt, List<E> batch, ReversePass pass);

    /** The prompt's quality on {@code eval}, without recording anything for autograd. */
    Evaluation evaluate(SoftPrompt prompt, List<E> eval, int batchSize);
}
