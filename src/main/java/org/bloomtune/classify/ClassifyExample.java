package org.bloomtune.classify;

/**
 * A text encoded into its pattern ({@code ids}: prefix, text, suffix — the label word follows),
 * with its gold label index ({@code -1} when unknown).
 */
public record ClassifyExample(long[] ids, int label) {
    public int length() { return ids.length; }
}
