package org.bloomtune.classify;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.train.DataFingerprint;
import org.bloomtune.train.Evaluation;
import org.bloomtune.train.TrainingTask;
import org.bytedeco.javacpp.PointerScope;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Prompt tuning for classification: the soft prompt learns to make the verbalizer's label words
 * likely after the pattern. Loss: cross-entropy over the label scores. Evaluation: that loss,
 * accuracy, macro-F1 and the confusion matrix.
 */
public final class ClassificationTask implements TrainingTask<ClassifyExample> {
    private final BloomModel model;
    private final LabelWords words;

    public ClassificationTask(BloomModel model, LabelWords words) {
        this.model = model;
        this.words = words;
    }

    @Override
    public BloomModel model() { return model; }

    @Override
    public int length(ClassifyExample example) { return example.length(); }

    @Override
    public double lossAndGrad(SoftPrompt prompt, List<ClassifyExample> examples, ReversePass pass) {
        try (VerbalizedBatch batch = batch(examples); PointerScope scope = new PointerScope()) {
            var input = PromptedInput.of(model, Collections.nCopies((int) batch.rows(), prompt), batch.inputIds(), batch.attentionMask(), null);
            return PromptBackward.lossAndGrad(model, input, new VerbalizerLoss(batch, gold(examples)), pass);
        }
    }

    /** The cross-entropy averages over texts. */
    @Override
    public long lossTerms(SoftPrompt prompt, List<ClassifyExample> batch) { return batch.size(); }

    /** [summed cross-entropy, texts, the confusion matrix row by row]. */
    @Override
    public double[] evaluationSums(SoftPrompt prompt, List<ClassifyExample> eval, int batchSize) {
        int labels = words.numLabels();
        double[] sums = new double[2 + labels * labels];
        if (eval.isEmpty()) return sums;
        Result r = score(prompt, eval, batchSize);
        sums[0] = r.loss() * eval.size();
        sums[1] = eval.size();
        for (int g = 0; g < labels; g++) for (int p = 0; p < labels; p++) sums[2 + g * labels + p] = r.metrics().confusion()[g][p];
        return sums;
    }

    @Override
    public Evaluation evaluation(double[] sums) {
        int labels = words.numLabels();
        long[][] confusion = new long[labels][labels];
        for (int g = 0; g < labels; g++) for (int p = 0; p < labels; p++) confusion[g][p] = Math.round(sums[2 + g * labels + p]);
        ClassificationMetrics m = new ClassificationMetrics(words.verbalizer().labelNames(), confusion);
        double loss = sums[1] == 0 ? Double.NaN : sums[0] / sums[1];
        String report = String.format("loss %.4f, %s%n%s", loss, m.summary(), m.confusionTable());
        return new Evaluation(loss, Map.of("eval_accuracy", m.accuracy(), "eval_macro_f1", m.macroF1()), report);
    }

    /** The mean cross-entropy over labelled examples and the metrics of the predictions. */
    public record Result(double loss, ClassificationMetrics metrics, List<Prediction> predictions) {}

    @Override
    public Map<String, String> settings() {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        out.put("task", "classify");
        out.put("verbalizer", words.verbalizer().toJson().replaceAll("\\s+", " ").strip());
        out.putAll(TrainingTask.modelSettings(model));
        return out;
    }

    @Override
    public void fingerprint(ClassifyExample example, DataFingerprint fingerprint) {
        fingerprint.add(example.ids()).add(example.label());
    }

    public Result score(SoftPrompt prompt, List<ClassifyExample> eval, int batchSize) {
        Classifier classifier = new Classifier(model);
        List<Prediction> predictions = new ArrayList<>(eval.size());
        for (int i = 0; i < eval.size(); i += batchSize) {
            List<ClassifyExample> part = eval.subList(i, Math.min(eval.size(), i + batchSize));
            predictions.addAll(classifier.predict(prompt, part.stream().map(ClassifyExample::ids).toList(), words));
        }
        int[] gold = new int[eval.size()];
        int[] predicted = new int[eval.size()];
        int labels = words.numLabels();
        float[] scores = new float[eval.size() * labels];
        for (int n = 0; n < eval.size(); n++) {
            gold[n] = eval.get(n).label();
            if (gold[n] < 0) throw new IllegalArgumentException("evaluation needs labelled texts; text " + n + " has none");
            predicted[n] = predictions.get(n).label();
            for (int l = 0; l < labels; l++) scores[n * labels + l] = (float) predictions.get(n).scores()[l];
        }
        double loss;
        try (PointerScope scope = new PointerScope()) {
            loss = Tensors.toDouble(LabelCrossEntropy.mean(Tensors.fromFloats(scores, eval.size(), labels),
                    java.util.Arrays.stream(gold).asLongStream().toArray()));
        }
        return new Result(loss, ClassificationMetrics.of(words.verbalizer().labelNames(), gold, predicted), predictions);
    }

    private VerbalizedBatch batch(List<ClassifyExample> examples) {
        return VerbalizedBatch.of(examples.stream().map(ClassifyExample::ids).toList(),
                Collections.nCopies(examples.size(), words), model.config().padTokenId());
    }

    private static long[] gold(List<ClassifyExample> examples) {
        long[] gold = new long[examples.size()];
        for (int n = 0; n < gold.length; n++) {
            if (examples.get(n).label() < 0) throw new IllegalArgumentException("training needs labelled texts");
            gold[n] = examples.get(n).label();
        }
        return gold;
    }
}
