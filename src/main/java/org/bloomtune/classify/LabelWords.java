package org.bloomtune.classify;

import org.bloomtune.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.List;

/**
 * A verbalizer's words as token ids, checked against the tokenizer and the model's vocabulary:
 * {@code tokens[label][word]} is the id sequence of that word, encoded on its own (the pattern
 * ends where the word begins, so the word's tokens are appended after the pattern's).
 */
public final class LabelWords {
    private final Verbalizer verbalizer;
    private final long[][][] tokens;

    private LabelWords(Verbalizer verbalizer, long[][][] tokens) {
        this.verbalizer = verbalizer;
        this.tokens = tokens;
    }

    /**
     * Encodes every word; a word the tokenizer cannot encode, that encodes to nothing, or to an id
     * outside the model's vocabulary is an error naming the verbalizer, the label and the word.
     */
    public static LabelWords encode(Verbalizer verbalizer, Tokenizer tokenizer, long vocabSize) {
        List<String> names = verbalizer.labelNames();
        long[][][] tokens = new long[names.size()][][];
        for (int l = 0; l < names.size(); l++) {
            List<String> words = verbalizer.labels().get(names.get(l));
            tokens[l] = new long[words.size()][];
            for (int w = 0; w < words.size(); w++) tokens[l][w] = encodeWord(verbalizer, tokenizer, vocabSize, names.get(l), words.get(w));
        }
        return new LabelWords(verbalizer, tokens);
    }

    private static long[] encodeWord(Verbalizer v, Tokenizer tokenizer, long vocabSize, String label, String word) {
        long[] ids;
        try {
            ids = tokenizer.encode(word);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(v.source() + ": label '" + label + "' word '" + word
                    + "' cannot be encoded by the tokenizer (" + e.getMessage() + ")", e);
        }
        if (ids.length == 0) throw new IllegalArgumentException(v.source() + ": label '" + label + "' word '" + word + "' encodes to no token");
        for (long id : ids) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException(v.source() + ": label '" + label + "' word '" + word + "' encodes to token " + id
                        + ", outside the model's vocabulary of " + vocabSize);
            }
        }
        return ids;
    }

    public Verbalizer verbalizer() { return verbalizer; }

    public int numLabels() { return tokens.length; }

    public int numWords(int label) { return tokens[label].length; }

    /** Token ids of word {@code word} of label {@code label} (a copy). */
    public long[] word(int label, int word) { return tokens[label][word].clone(); }

    /** The most tokens any word has: the pattern must leave room for all but the last. */
    public int longestWord() {
        return Arrays.stream(tokens).flatMap(Arrays::stream).mapToInt(t -> t.length).max().orElseThrow();
    }
}
