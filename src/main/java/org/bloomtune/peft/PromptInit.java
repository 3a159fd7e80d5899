package org.bloomtune.peft;

import java.util.Locale;

/** PEFT's {@code prompt_tuning_init}: how the virtual-token embeddings start. */
public enum PromptInit {
    /** {@code nn.Embedding}'s default: every entry standard normal. */
    RANDOM,
    /** The embeddings of an init text's token ids, cut or repeated cyclically to N. */
    TEXT,
    /** The embeddings of N token ids drawn uniformly from the vocabulary. */
    SAMPLE_VOCAB;

    public static PromptInit parse(String text) {
        try {
            return valueOf(text.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown prompt init '" + text + "' (expected RANDOM, TEXT or SAMPLE_VOCAB)");
        }
    }
}
