package org.bloomtune.peft;

/** P-tuning's {@code encoder_reparameterization_type}: what turns the virtual-token embeddings into the prompt. */
public enum EncoderType {
    /** Linear–ReLU–Linear–ReLU–Linear. */
    MLP,
    /** A bidirectional LSTM over the N virtual tokens, then Linear–ReLU–Linear. */
    LSTM;

    public static EncoderType parse(String text) {
        for (EncoderType e : values()) if (e.name().equalsIgnoreCase(text.trim())) return e;
        throw new IllegalArgumentException("encoder_reparameterization_type must be MLP or LSTM, got '" + text + "'");
    }
}
