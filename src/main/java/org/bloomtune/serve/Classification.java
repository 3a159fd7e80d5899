package org.bloomtune.serve;

import org.bloomtune.classify.Prediction;

/** A text classified by a served task: the prediction, the predicted label's word, and the pattern's length in tokens. */
public record Classification(Prediction prediction, String labelWord, int promptTokens) {}
