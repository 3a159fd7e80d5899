package org.bloomtune.classify;

import java.util.List;
import java.util.Locale;

/**
 * Accuracy, macro-F1 and the confusion matrix of predicted against gold labels. A class that is
 * never predicted and never true is left out of the macro average (its F1 is undefined); one that
 * is true but never predicted, or predicted but never true, counts with F1 0.
 */
public record ClassificationMetrics(List<String> labels, long[][] confusion) {

    /** {@code confusion[gold][predicted]} counts from the two label arrays. */
    public static ClassificationMetrics of(List<String> labels, int[] gold, int[] predicted) {
        if (gold.length != predicted.length) throw new IllegalArgumentException(gold.length + " gold labels for " + predicted.length + " predictions");
        long[][] c = new long[labels.size()][labels.size()];
        for (int i = 0; i < gold.length; i++) c[gold[i]][predicted[i]]++;
        return new ClassificationMetrics(List.copyOf(labels), c);
    }

    public long total() {
        long n = 0;
        for (long[] row : confusion) for (long v : row) n += v;
        return n;
    }

    public double accuracy() {
        long right = 0;
        for (int i = 0; i < confusion.length; i++) right += confusion[i][i];
        return total() == 0 ? Double.NaN : (double) right / total();
    }

    public double f1(int label) {
        long tp = confusion[label][label];
        long goldCount = 0;
        long predictedCount = 0;
        for (int j = 0; j < confusion.length; j++) {
            goldCount += confusion[label][j];
            predictedCount += confusion[j][label];
        }
        if (goldCount + predictedCount == 0) return Double.NaN;
        return 2.0 * tp / (goldCount + predictedCount);
    }

    public double macroF1() {
        double sum = 0;
        int n = 0;
        for (int l = 0; l < confusion.length; l++) {
            double f = f1(l);
            if (Double.isNaN(f)) continue;
            sum += f;
            n++;
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    /** Accuracy of always answering the most frequent gold label of {@code reference}. */
    public double majorityAccuracy(ClassificationMetrics reference) {
        int majority = reference.majorityLabel();
        long count = 0;
        for (long v : confusion[majority]) count += v;
        return total() == 0 ? Double.NaN : (double) count / total();
    }

    /** The most frequent gold label (the first on ties). */
    public int majorityLabel() {
        int best = 0;
        long bestCount = -1;
        for (int l = 0; l < confusion.length; l++) {
            long count = 0;
            for (long v : confusion[l]) count += v;
            if (count > bestCount) {
                bestCount = count;
                best = l;
            }
        }
        return best;
    }

    /** The confusion matrix as text: rows are gold labels, columns predictions. */
    public String confusionTable() {
        int width = Math.max(8, labels.stream().mapToInt(String::length).max().orElse(0) * 2 + 2);
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%-" + width + "s", "gold \\ predicted"));
        for (String l : labels) sb.append(String.format(Locale.ROOT, "%" + width + "s", l));
        sb.append('\n');
        for (int i = 0; i < labels.size(); i++) {
            sb.append(String.format(Locale.ROOT, "%-" + width + "s", labels.get(i)));
            for (int j = 0; j < labels.size(); j++) sb.append(String.format(Locale.ROOT, "%" + width + "d", confusion[i][j]));
            sb.append('\n');
        }
        return sb.toString();
    }

    public String summary() {
        return String.format(Locale.ROOT, "accuracy %.4f, macro-F1 %.4f over %d texts", accuracy(), macroF1(), total());
    }
}
