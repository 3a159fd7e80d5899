package org.bloomtune.serve;

/** Why a row stopped, in OpenAI's words. */
public enum FinishReason {
    /** An end-of-sequence token or a stop string. */
    STOP,
    /** {@code max_tokens} reached. */
    LENGTH;

    public String openAiName() { return name().toLowerCase(java.util.Locale.ROOT); }
}
