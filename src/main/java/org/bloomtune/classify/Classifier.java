package org.bloomtune.classify;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.PreparedInput;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Classifies patterned texts with a frozen model: each text behind its own soft prompt (or none,
 * zero-shot) and scored with its own label words, so one batch may serve several tasks. Nothing
 * is recorded for autograd.
 */
public final class Classifier {
    private final BloomModel model;

    public Classifier(BloomModel model) {
        this.model = model;
    }

    /** Every text with the same prompt (null: none) and label words. */
    public List<Prediction> predict(SoftPrompt prompt, List<long[]> patterns, LabelWords words) {
        return predict(prompt == null ? null : java.util.Collections.nCopies(patterns.size(), prompt), patterns,
                java.util.Collections.nCopies(patterns.size(), words));
    }

    /**
     * @param prompts  text n's soft prompt, or null for no prompts at all
     * @param patterns text n's pattern ids (see {@link ClassifyEncoder})
     * @param words    text n's label words
     */
    public List<Prediction> predict(List<SoftPrompt> prompts, List<long[]> patterns, List<LabelWords> words) {
        try (GradMode off = GradMode.off();
             VerbalizedBatch batch = VerbalizedBatch.of(patterns, words, model.config().padTokenId());
             PointerScope scope = new PointerScope()) {
            float[] scores = Tensors.toFloats(LabelScores.of(model, lastOutput(prompts, batch, patterns.size()), batch));
            List<Prediction> out = new ArrayList<>(patterns.size());
            for (int n = 0; n < patterns.size(); n++) {
                out.add(prediction(scores, batch.firstScore(n), words.get(n).verbalizer().labelNames()));
            }
            return out;
        }
    }

    private Tensor lastOutput(List<SoftPrompt> prompts, VerbalizedBatch batch, int texts) {
        CausalLmInput input;
        if (prompts == null) {
            input = CausalLmInput.ids(batch.inputIds()).mask(batch.attentionMask());
        } else {
            if (prompts.size() != texts) throw new IllegalArgumentException(prompts.size() + " prompts for " + texts + " texts");
            input = PromptedInput.of(model, rowPrompts(prompts, batch), batch.inputIds(), batch.attentionMask(), null);
        }
        PreparedInput in = model.stages().prepare(input, 0);
        return model.stages().lastHidden(in, input.length(), null);
    }

    /** A text with multi-token words runs on several rows; each row gets its text's prompt. */
    private static List<SoftPrompt> rowPrompts(List<SoftPrompt> prompts, VerbalizedBatch batch) {
        List<SoftPrompt> rows = new ArrayList<>();
        for (int r = 0; r < batch.rows(); r++) rows.add(prompts.get(batch.textOfRow(r)));
        return rows;
    }

    private static Prediction prediction(float[] scores, int first, List<String> names) {
        double[] s = new double[names.size()];
        double max = Double.NEGATIVE_INFINITY;
        int best = 0;
        for (int l = 0; l < s.length; l++) {
            s[l] = scores[first + l];
            if (s[l] > max) {
                max = s[l];
                best = l;
            }
        }
        double sum = 0;
        double[] p = new double[s.length];
        for (int l = 0; l < s.length; l++) sum += p[l] = Math.exp(s[l] - max);
        for (int l = 0; l < s.length; l++) p[l] /= sum;
        return new Prediction(best, names.get(best), p, s, names);
    }
}
