package org.bloomtune.serve;

import org.bloomtune.classify.Prediction;

/** The answer to a {@link TaskRequest}: a prediction (classification) or generated text (the other). */
public record TaskResponse(TaskRequest request, Prediction prediction, String generated, long[] generatedIds) {
    public boolean isClassification() { return prediction != null; }
}
