package org.bloomtune.classify;

import java.util.List;

/**
 * A classified text: the predicted label, each label's probability (softmax over the label
 * scores) and its score (mean log-probability of its words' tokens), in the verbalizer's order.
 */
public record Prediction(int label, String labelName, double[] probabilities, double[] scores, List<String> labelNames) {
    /** {@code {"积极": 0.7611, "消极": 0.2389}}: each label's probability, rounded to 4 places, as the CLI prints it. */
    public com.google.gson.JsonObject probabilitiesJson() {
        com.google.gson.JsonObject o = new com.google.gson.JsonObject();
        for (int l = 0; l < labelNames.size(); l++) o.addProperty(labelNames.get(l), Math.round(probabilities[l] * 1e4) / 1e4);
        return o;
    }
}
