package org.bloomtune.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-pair encoding: starting from single byte-level characters, repeatedly merge the adjacent
 * pair with the best (lowest) merge rank until no listed merge applies; then look the symbols up.
 */
final class Bpe {
    private final Map<String, Integer> vocab;
    private final Map<String, Integer> ranks;                 // "left right" → rank
    private final Map<String, Word> cache = new ConcurrentHashMap<>();

    /** A piece's token ids and each token's length in the piece's byte-level characters (= bytes). */
    record Word(int[] ids, int[] lengths) {}

    Bpe(Map<String, Integer> vocab, List<String[]> merges) {
        this.vocab = vocab;
        this.ranks = new HashMap<>();
        for (int i = 0; i < merges.size(); i++) ranks.putIfAbsent(merges.get(i)[0] + " " + merges.get(i)[1], i);
    }

    Integer id(String token) { return vocab.get(token); }

    int size() { return vocab.size(); }

    Word encode(String piece) {
        if (piece.length() > 256) return merge(piece);      // long runs: do not grow the cache
        return cache.computeIfAbsent(piece, this::merge);
    }

    private Word merge(String piece) {
        List<String> symbols = new ArrayList<>(piece.length());
        for (int i = 0; i < piece.length(); i++) symbols.add(String.valueOf(piece.charAt(i)));
        while (symbols.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer r = ranks.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) break;
            symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
        }
        int[] ids = new int[symbols.size()];
        int[] lengths = new int[symbols.size()];
        for (int i = 0; i < ids.length; i++) {
            Integer id = vocab.get(symbols.get(i));
            if (id == null) throw new IllegalArgumentException("token '" + symbols.get(i) + "' is not in the vocabulary");
            ids[i] = id;
            lengths[i] = symbols.get(i).length();
        }
        return new Word(ids, lengths);
    }
}
