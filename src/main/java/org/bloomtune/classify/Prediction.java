package org.bloomtune.classify;

import java.util.List;

/**
 * A classified text: the predicted label, each label's probability (softmax over the label
 * scores) and its score (mean log-probability of its words' tokens), in the verbalizer's order.
 */
public record Prediction(int label, String labelName, double[] probabilities, double[] scores, List<String> labelNames) {
    public double confidence() { return probabilities[label]; }
}
