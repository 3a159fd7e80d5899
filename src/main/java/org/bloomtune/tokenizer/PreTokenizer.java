package org.bloomtune.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into the pieces BPE runs on, as HF tokenizers' pre-tokenizers do. Pieces keep their
 * character offsets into the original text.
 */
interface PreTokenizer {

    /** A piece of text and where it starts in the original. */
    record Piece(String text, int start) {}

    List<Piece> split(List<Piece> pieces);

    /** GPT-2's pattern; HF's ByteLevel pre-tokenizer uses it when {@code use_regex} is true. */
    Pattern GPT2 = Pattern.compile("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** Split on a pattern, matches and the text between them each becoming a piece ("isolated"). */
    static PreTokenizer isolated(Pattern pattern) {
        return pieces -> {
            List<Piece> out = new ArrayList<>();
            for (Piece p : pieces) {
                Matcher m = pattern.matcher(p.text());
                int last = 0;
                while (m.find()) {
                    if (m.start() == m.end()) continue;
                    if (m.start() > last) out.add(new Piece(p.text().substring(last, m.start()), p.start() + last));
                    out.add(new Piece(m.group(), p.start() + m.start()));
                    last = m.end();
                }
                if (last < p.text().length()) out.add(new Piece(p.text().substring(last), p.start() + last));
            }
            return out;
        };
    }

    /** HF's ByteLevel pre-tokenizer: optional leading space, optional GPT-2 split (byte mapping is done later). */
    static PreTokenizer byteLevel(boolean addPrefixSpace, boolean useRegex) {
        return pieces -> {
            List<Piece> out = new ArrayList<>();
            for (int i = 0; i < pieces.size(); i++) {
                Piece p = pieces.get(i);
                // HF prefixes a space to the first piece only when it does not start with one.
                Piece q = addPrefixSpace && i == 0 && !p.text().startsWith(" ") ? new Piece(" " + p.text(), p.start() - 1) : p;
                out.addAll(useRegex ? isolated(GPT2).split(List.of(q)) : List.of(q));
            }
            return out;
        };
    }

    static PreTokenizer sequence(List<PreTokenizer> steps) {
        return pieces -> {
            for (PreTokenizer s : steps) pieces = s.split(pieces);
            return pieces;
        };
    }
}
