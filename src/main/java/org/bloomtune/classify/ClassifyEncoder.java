package org.bloomtune.classify;

import org.bloomtune.tokenizer.Tokenizer;

import java.util.Arrays;

/**
 * Puts texts into the pattern as token ids: prefix, text, suffix, each encoded on its own so the
 * pattern's tokens are the same for every text. A text too long for {@code maxLength} loses its
 * end — the suffix, which leads into the label word, is always kept whole, and room is left for
 * all but the last token of the longest label word.
 */
public final class ClassifyEncoder {
    private final Tokenizer tokenizer;
    private final LabelWords words;
    private final long[] prefix;
    private final long[] suffix;
    private final int textBudget;

    public ClassifyEncoder(Tokenizer tokenizer, LabelWords words, int maxLength) {
        this.tokenizer = tokenizer;
        this.words = words;
        this.prefix = tokenizer.encode(words.verbalizer().prefix());
        this.suffix = tokenizer.encode(words.verbalizer().suffix());
        this.textBudget = maxLength - prefix.length - suffix.length - (words.longestWord() - 1);
        if (textBudget < 1) {
            throw new IllegalArgumentException("--max-length " + maxLength + " leaves no room for the text: the pattern of "
                    + words.verbalizer().source() + " takes " + (prefix.length + suffix.length) + " tokens");
        }
    }

    public LabelWords words() { return words; }

    /** The record's pattern ids and label index (-1 when the record has no label). */
    public ClassifyExample encode(ClassifyRecord record) {
        int label = record.label() == null ? -1 : words.verbalizer().labelIndex(record.label(), record.where());
        return new ClassifyExample(ids(record.text()), label);
    }

    /** Pattern ids of {@code text}, truncated to fit. */
    public long[] ids(String text) {
        long[] body = tokenizer.encode(text);
        if (body.length > textBudget) body = Arrays.copyOf(body, textBudget);
        long[] out = new long[prefix.length + body.length + suffix.length];
        System.arraycopy(prefix, 0, out, 0, prefix.length);
        System.arraycopy(body, 0, out, prefix.length, body.length);
        System.arraycopy(suffix, 0, out, prefix.length + body.length, suffix.length);
        return out;
    }
}
