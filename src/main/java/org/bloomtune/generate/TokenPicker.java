package org.bloomtune.generate;

import java.util.Arrays;
import java.util.Random;
import java.util.Set;

/**
 * Chooses the next token of one row from its logits, in HF's order: repetition penalty, then (when
 * sampling) temperature, top-k, top-p, and a draw from the softmax; greedy takes the argmax.
 * Each picker draws from its own generator seeded by the config, so a row's samples do not depend
 * on the rows decoded beside it.
 */
public final class TokenPicker {
    private final GenerationConfig config;
    private final Random random;

    public TokenPicker(GenerationConfig config) {
        this.config = config;
        this.random = new Random(config.seed());
    }

    /** {@code logits} [V] of one row (modified in place); {@code seen} are the row's tokens so far. */
    public long pick(float[] logits, Set<Long> seen) {
        penalize(logits, seen);
        if (!config.sample()) return argmax(logits);
        double[] probs = softmax(logits, config.temperature());
        keepTopK(probs, config.topK());
        keepTopP(probs, config.topP());
        return draw(probs);
    }

    /** CTRL: a seen token's logit is divided by the penalty when positive, multiplied when negative. */
    private void penalize(float[] logits, Set<Long> seen) {
        double p = config.repetitionPenalty();
        if (p == 1.0) return;
        for (long id : seen) {
            int i = (int) id;
            logits[i] = (float) (logits[i] > 0 ? logits[i] / p : logits[i] * p);
        }
    }

    /**
     * True when the pick is the logits' argmax as they are (greedy, no repetition penalty): the
     * caller may then take it from the logits tensor without copying them out.
     */
    public boolean plainArgmax() {
        return !config.sample() && config.repetitionPenalty() == 1.0;
    }

    /** First index of the largest value, as torch.argmax: a NaN counts as the largest. */
    static long argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length && !Float.isNaN(v[best]); i++) if (v[i] > v[best] || Float.isNaN(v[i])) best = i;
        return best;
    }

    static double[] softmax(float[] logits, double temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l / temperature);
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp(logits[i] / temperature - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) p[i] /= sum;
        return p;
    }

    /** Zeroes all but the k largest probabilities (ties at the k-th value are kept, as HF does). */
    static void keepTopK(double[] probs, int k) {
        if (k <= 0 || k >= probs.length) return;
        double threshold = kthLargest(probs.clone(), k);
        for (int i = 0; i < probs.length; i++) if (probs[i] < threshold) probs[i] = 0;
    }

    /**
     * Nucleus: keeps the most likely tokens until their mass reaches {@code p} (at least one token),
     * zeroes the rest; among tokens tied at the last kept value, the lower ids stay. Only the
     * nonzero probabilities are sorted (after top-k, a few dozen of a 250880-word vocabulary).
     */
    static void keepTopP(double[] probs, double p) {
        if (p >= 1.0) return;
        double total = 0;
        int nonzero = 0;
        for (double v : probs) {
            total += v;
            if (v > 0) nonzero++;
        }
        double[] sorted = new double[nonzero];
        int n = 0;
        for (double v : probs) if (v > 0) sorted[n++] = v;
        Arrays.sort(sorted);
        double mass = 0;
        int next = sorted.length - 1;
        while (next >= 0 && (next == sorted.length - 1 || mass < p * total)) mass += sorted[next--];
        if (next == sorted.length - 1) return;                 // nothing is nonzero
        double threshold = sorted[next + 1];
        int tiedKept = 0;
        for (int i = next + 1; i < sorted.length && sorted[i] == threshold; i++) tiedKept++;
        for (int i = 0; i < probs.length; i++) {
            if (probs[i] < threshold || (probs[i] == threshold && tiedKept-- <= 0)) probs[i] = 0;
        }
    }

    /** The k-th largest of {@code values} (reordered in place): quickselect, linear on average. */
    static double kthLargest(double[] values, int k) {
        int target = values.length - k;                        // its index in ascending order
        int lo = 0;
        int hi = values.length - 1;
        while (lo < hi) {
            double pivot = values[(lo + hi) >>> 1];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (values[i] < pivot) i++;
                while (values[j] > pivot) j--;
                if (i <= j) {
                    double t = values[i];
                    values[i++] = values[j];
                    values[j--] = t;
                }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return values[target];
        }
        return values[target];
    }

    private long draw(double[] probs) {
        double total = 0;
        for (double v : probs) total += v;
        double u = random.nextDouble() * total;
        int last = 0;
        for (int i = 0; i < probs.length; i++) {
            if (probs[i] <= 0) continue;
            last = i;
            u -= probs[i];
            if (u < 0) return i;
        }
        return last;
    }
}
