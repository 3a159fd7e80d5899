package org.bloomtune.train;

import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.Int8Options;
import org.bloomtune.peft.SoftPrompt;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a prompt-tuning run optimizes, seen from the {@link Trainer}: how a micro-batch of examples
 * becomes a loss and a prompt gradient, and how held-out examples are scored. The trainer owns
 * everything else — order, accumulation, clipping, schedule, checkpoints, resume.
 *
 * @param <E> one encoded example
 */
public interface TrainingTask<E> {

    /** The frozen model the task runs on (its shapes size the reverse pass's memory). */
    BloomModel model();

    /** Tokens in the example, for grouping batches by length and for throughput. */
    int length(E example);

    /**
     * Positions the model computes for {@code batch}: its rows times the longest, as a padding
     * collator lays them out, unless the task lays them out otherwise.
     */
    default long computedPositions(List<E> batch) {
        return (long) batch.size() * batch.stream().mapToInt(this::length).max().orElse(0);
    }

    /**
     * The mean loss of {@code batch}; its gradient is added to {@code prompt.grad()}.
     */
    double lossAndGrad(SoftPrompt prompt, List<E> batch, ReversePass pass);

    /**
     * How many terms the mean loss of {@code batch} averages (labelled tokens, texts): what weighs
     * a shard of a data-parallel batch against the whole, so the update equals one process's on
     * the whole batch (a token-weighted mean, not a mean of per-rank means). {@code prompt} says how
     * the prompt enters, which can decide what is counted.
     */
    long lossTerms(SoftPrompt prompt, List<E> batch);

    /**
     * Sums of the evaluation's statistics over {@code eval} (e.g. summed loss and its count):
     * summable across shards of the eval data, read by {@link #evaluation}. Nothing is recorded.
     */
    double[] evaluationSums(SoftPrompt prompt, List<E> eval, int batchSize);

    /** The evaluation from statistics summed by {@link #evaluationSums} (over one or many shards). */
    Evaluation evaluation(double[] sums);

    /** The prompt's quality on {@code eval}, without recording anything for autograd. */
    default Evaluation evaluate(SoftPrompt prompt, List<E> eval, int batchSize) {
        return evaluation(evaluationSums(prompt, eval, batchSize));
    }

    /**
     * The objective and the model as named settings ({@code task}, {@code model}, ...): a
     * checkpoint records them and an exact resume needs them unchanged.
     */
    Map<String, String> settings();

    /** Adds what {@code example} feeds the model (token ids, labels) to a fingerprint of the data. */
    void fingerprint(E example, DataFingerprint fingerprint);

    /** The model's part of {@link #settings()}: its shape and how its weights were placed. */
    static Map<String, String> modelSettings(BloomModel model) {
        BloomConfig c = model.config();
        Map<String, String> out = new LinkedHashMap<>();
        out.put("model", "vocab " + c.vocabSize() + ", hidden " + c.hiddenSize() + ", heads " + c.numHeads() + ", layers " + c.numLayers());
        out.put("dtype", model.dtype().name());
        Int8Options int8 = model.options().int8();
        out.put("int8", int8.enabled() ? int8.mode() + " (threshold " + int8.threshold() + ")" : "none");
        return out;
    }
}
