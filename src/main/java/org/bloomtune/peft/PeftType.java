package org.bloomtune.peft;

/**
 * The members of PEFT's continuous-prompt family for causal LMs, by their {@code peft_type}.
 * All three keep the backbone frozen and train a few thousand numbers ahead of it.
 */
public enum PeftType {
    /** {@code PROMPT_TUNING}: N trainable embeddings ahead of the token embeddings. */
    PROMPT_TUNING("prompt"),
    /** {@code P_TUNING}: the N embeddings come out of a small trainable encoder (MLP or LSTM). */
    P_TUNING("p-tuning"),
    /** {@code PREFIX_TUNING}: trainable keys and values of N positions in every attention layer. */
    PREFIX_TUNING("prefix");

    private final String flag;

    PeftType(String flag) {
        this.flag = flag;
    }

    /** The CLI's name ({@code prompt}, {@code p-tuning}, {@code prefix}). */
    public String flag() { return flag; }

    /** Whether the prompt enters as virtual-token embeddings (rather than as a key/value prefix). */
    public boolean entersEmbeddings() { return this != PREFIX_TUNING; }

    /** Parses a flag or PEFT's JSON name, any case: {@code prompt}, {@code p-tuning}, {@code PREFIX_TUNING}, ... */
    public static PeftType parse(String text) {
        String t = text.trim();
        for (PeftType p : values()) if (p.flag.equalsIgnoreCase(t) || p.name().equalsIgnoreCase(t)) return p;
        throw new IllegalArgumentException("peft_type must be prompt, p-tuning or prefix (PROMPT_TUNING, P_TUNING, PREFIX_TUNING), got '" + text + "'");
    }
}
