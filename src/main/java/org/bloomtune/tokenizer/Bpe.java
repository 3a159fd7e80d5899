package org.bloomtune.tokenizer;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-pair encoding: starting from single byte-level characters, repeatedly merge the adjacent
 * pair with the best (lowest) merge rank — the leftmost among equals — until no listed merge
 * applies. As HF tokenizers does it: the symbols form a linked list and the candidate pairs wait in
 * a priority queue, so a piece of n bytes costs O(n log n), not the O(n²) of rescanning all pairs
 * after every merge (a run of Chinese text without spaces is one piece of thousands of bytes).
 */
final class Bpe {
    /** Pieces up to this many bytes are cached; longer ones are rare and would bloat the cache. */
    private static final int CACHED_LENGTH = 256;
    /** At most this many pieces are cached (HF tokenizers' capacity): a long-running server's memory stays bounded. */
    private static final int CACHE_CAPACITY = 10_000;

    private final Map<String, Integer> vocab;
    private final Map<Long, Merge> merges;                    // (left id, right id) → rank and merged id
    private final Integer unkId;
    private final Map<String, Word> cache = new ConcurrentHashMap<>();

    /** A piece's token ids and each token's length in the piece's byte-level characters (= bytes). */
    record Word(int[] ids, int[] lengths) {}

    private record Merge(int rank, int id) {}

    /**
     * @param merges pairs in rank order; both parts and their concatenation must be in {@code vocab}
     * @param unkToken the vocabulary entry for symbols outside it, or null (then meeting one is an error)
     */
    Bpe(Map<String, Integer> vocab, List<String[]> merges, String unkToken) {
        this.vocab = vocab;
        this.merges = new HashMap<>();
        for (int i = 0; i < merges.size(); i++) {
            String[] m = merges.get(i);
            int left = required(m[0], i, m);
            int right = required(m[1], i, m);
            int merged = required(m[0] + m[1], i, m);
            this.merges.putIfAbsent(pair(left, right), new Merge(i, merged));
        }
        this.unkId = unkToken == null ? null : vocab.get(unkToken);   // HF too fails only when the unknown is met
    }

    private int required(String token, int index, String[] merge) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw new IllegalArgumentException("model.merges[" + index + "] '" + merge[0] + " " + merge[1] + "': '" + token
                    + "' is not in model.vocab");
        }
        return id;
    }

    Integer id(String token) { return vocab.get(token); }

    int size() { return vocab.size(); }

    Word encode(String piece) {
        Word cached = cache.get(piece);
        if (cached != null) return cached;
        Word word = merge(piece);
        if (piece.length() <= CACHED_LENGTH && cache.size() < CACHE_CAPACITY) cache.putIfAbsent(piece, word);
        return word;
    }

    private Word merge(String piece) {
        int n = piece.length();
        int[] ids = new int[n];
        int[] lengths = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = symbol(piece.charAt(i));
            lengths[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        // Candidates as (rank << 32 | position), smallest first. Ranks are unique per pair, so an
        // entry whose position now holds another pair (it was merged since) shows a different rank.
        LongMinHeap queue = new LongMinHeap(n);
        for (int i = 0; i + 1 < n; i++) offer(queue, ids, i, i + 1);
        while (!queue.isEmpty()) {
            long top = queue.poll();
            int pos = (int) top;
            int right = next[pos];
            if (lengths[pos] == 0 || right < 0) continue;
            Merge m = merges.get(pair(ids[pos], ids[right]));
            if (m == null || m.rank() != (int) (top >>> 32)) continue;
            ids[pos] = m.id();
            lengths[pos] += lengths[right];
            lengths[right] = 0;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) offer(queue, ids, prev[pos], pos);
            if (next[pos] >= 0) offer(queue, ids, pos, next[pos]);
        }
        int count = 0;
        for (int i = 0; i >= 0 && i < n; i = next[i]) count++;
        int[] outIds = new int[count];
        int[] outLengths = new int[count];
        int k = 0;
        for (int i = 0; i >= 0 && i < n; i = next[i]) {
            outIds[k] = ids[i];
            outLengths[k++] = lengths[i];
        }
        return new Word(outIds, outLengths);
    }

    private void offer(LongMinHeap queue, int[] ids, int left, int right) {
        Merge m = merges.get(pair(ids[left], ids[right]));
        if (m != null) queue.add((long) m.rank() << 32 | left);
    }

    private int symbol(char c) {
        Integer id = vocab.get(String.valueOf(c));
        if (id != null) return id;
        if (unkId != null) return unkId;
        throw new IllegalArgumentException("the tokenizer's vocabulary has no entry for the byte-level symbol '" + c
                + "' (U+" + String.format("%04X", (int) c) + ") and no unk_token");
    }

    private static long pair(int left, int right) { return ((long) left << 32) | (right & 0xFFFFFFFFL); }
}
