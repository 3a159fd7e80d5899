package org.bloomtune.train;

import org.bloomtune.autograd.HeadLoss;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.data.Batch;
import org.bloomtune.data.Example;
import org.bloomtune.data.Packing;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.PreparedInput;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;

import java.util.List;
import java.util.Map;

/**
 * The seed's objective: the causal-LM loss on the labelled (response) tokens of each example. By
 * default a micro-batch's examples go into as few rows as fit within its longest
 * ({@link Packing#withinBatch}), where that leaves every loss term as it is: the same examples per
 * step and the same loss as padded rows, without computing the pad tokens.
 */
public final class CausalLmTask implements TrainingTask<Example> {
    private final BloomModel model;
    private final boolean paddingFree;

    /** Padding-free rows where they change no loss term. */
    public CausalLmTask(BloomModel model) {
        this(model, true);
    }

    /** {@code paddingFree} false: every example in a row of its own, padded to the longest, as transformers' collators do. */
    public CausalLmTask(BloomModel model, boolean paddingFree) {
        this.model = model;
        this.paddingFree = paddingFree;
    }

    @Override
    public BloomModel model() { return model; }

    @Override
    public int length(Example example) { return example.length(); }

    @Override
    public double lossAndGrad(SoftPrompt prompt, List<Example> examples, ReversePass pass) {
        try (Batch batch = Batch.collate(rows(examples), model.config().padTokenId()); PointerScope scope = new PointerScope()) {
            return PromptBackward.lossAndGrad(model,
                    PromptedInput.of(model, prompt, batch.inputIds(), batch.attentionMask(), batch.labels()), pass);
        }
    }

    @Override
    public long computedPositions(List<Example> batch) {
        return TrainingTask.super.computedPositions(rows(batch));
    }

    private List<Example> rows(List<Example> batch) {
        return paddingFree ? Packing.withinBatch(batch) : batch;
    }

    /**
     * Labels the loss counts, as HF's loss does after the shift (position t predicts label t + 1):
     * with virtual tokens ahead of the text (prompt tuning, P-tuning) the last one predicts label 0
     * too; with a prefix nothing does.
     */
    @Override
    public long lossTerms(SoftPrompt prompt, List<Example> batch) {
        int first = prompt.type().entersEmbeddings() ? 0 : 1;
        long n = 0;
        for (Example e : batch) for (int i = first; i < e.labels().length; i++) if (e.labels()[i] != CausalLmLoss.IGNORE_INDEX) n++;
        return n;
    }

    /** [summed token loss, labelled tokens]. */
    @Override
    public double[] evaluationSums(SoftPrompt prompt, List<Example> eval, int batchSize) {
        double sum = 0;
        long count = 0;
        try (GradMode off = GradMode.off()) {
            for (int i = 0; i < eval.size(); i += batchSize) {
                List<Example> part = eval.subList(i, Math.min(eval.size(), i + batchSize));
                try (Batch batch = Batch.collate(rows(part), model.config().padTokenId()); PointerScope scope = new PointerScope()) {
                    var input = PromptedInput.of(model, prompt, batch.inputIds(), batch.attentionMask(), batch.labels());
                    long n = CausalLmLoss.countedLabels(input.labels());
                    if (n == 0) continue;
                    // The streamed head at labelled positions: model.forward would form [B, T, V] logits.
                    PreparedInput in = model.stages().prepare(input, 0);
                    sum += HeadLoss.causalLmLossSum(model, model.stages().lastHidden(in, input.length(), null), in.labels());
                    count += n;
                }
            }
        }
        return new double[]{sum, count};
    }

    /** The token-weighted mean loss and its perplexity. */
    @Override
    public Evaluation evaluation(double[] sums) {
        double loss = sums[1] == 0 ? Double.NaN : sums[0] / sums[1];
        return new Evaluation(loss, Map.of("eval_ppl", Math.exp(loss)), String.format("loss %.4f, perplexity %.2f", loss, Math.exp(loss)));
    }

    @Override
    public Map<String, String> settings() {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        out.put("task", "causal-lm");
        out.put("batch_rows", paddingFree ? "padding-free" : "padded");
        out.putAll(TrainingTask.modelSettings(model));
        return out;
    }

    @Override
    public void fingerprint(Example example, DataFingerprint fingerprint) {
        fingerprint.add(example.ids()).add(example.labels());
        if (example.packed()) fingerprint.add(java.util.Arrays.stream(example.recordStarts()).asLongStream().toArray());
    }
}
