package org.bloomtune.tokenizer;

/**
 * Token ids of one text with each token's character span {@code [start, end)} in it. A token that
 * covers part of a multi-byte character spans the whole character.
 */
public record Encoding(long[] ids, int[] starts, int[] ends) {
    public int size() { return ids.length; }
}
