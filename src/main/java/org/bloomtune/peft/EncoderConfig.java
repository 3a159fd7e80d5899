package org.bloomtune.peft;

/**
 * The encoder fields of PEFT's P-tuning and prefix-tuning configs.
 *
 * @param type             P-tuning's {@code encoder_reparameterization_type}; null for prefix tuning
 * @param hiddenSize       {@code encoder_hidden_size} (the model's hidden size when PEFT was not told)
 * @param numLayers        {@code encoder_num_layers}: the LSTM's layers (PEFT ignores it for MLP)
 * @param dropout          {@code encoder_dropout}, between LSTM layers in training
 * @param prefixProjection prefix tuning's {@code prefix_projection}: the prefix comes out of a
 *                         Linear–Tanh–Linear transform instead of being the trainable tensor itself
 */
public record EncoderConfig(EncoderType type, int hiddenSize, int numLayers, double dropout, boolean prefixProjection) {
    /** Far beyond anything PEFT's examples use; bounds the encoder's allocation. */
    public static final int MAX_HIDDEN = 1 << 16;

    public EncoderConfig {
        if (hiddenSize < 1 || hiddenSize > MAX_HIDDEN) {
            throw new IllegalArgumentException("encoder_hidden_size must lie in [1, " + MAX_HIDDEN + "], got " + hiddenSize);
        }
        if (numLayers < 1 || numLayers > 16) throw new IllegalArgumentException("encoder_num_layers must lie in [1, 16], got " + numLayers);
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("encoder_dropout must lie in [0, 1), got " + dropout);
    }

    /** PEFT's P-tuning defaults but for the type and width: 2 LSTM layers, no dropout. */
    public static EncoderConfig pTuning(EncoderType type, int hiddenSize) {
        return new EncoderConfig(type, hiddenSize, 2, 0.0, false);
    }

    public static EncoderConfig prefix(boolean projection, int hiddenSize) {
        return new EncoderConfig(null, hiddenSize, 2, 0.0, projection);
    }
}
