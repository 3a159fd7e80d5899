package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * Logits [B, T, V] in the compute dtype and, when labels were given, the mean loss (a float32
 * scalar, float64 for a float64 model; null otherwise). The receiver owns both and frees them with {@link #close}.
 */
public record CausalLmOutput(Tensor logits, Tensor loss) implements AutoCloseable {

    public boolean hasLoss() { return loss != null; }

    @Override
    public void close() {
        logits.close();
        if (loss != null) loss.close();
    }
}
