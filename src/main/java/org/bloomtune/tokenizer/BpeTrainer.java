package org.bloomtune.tokenizer;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Trains a byte-level BPE with BLOOM's pipeline on a text corpus and writes it as a HuggingFace
 * {@code tokenizer.json}: BLOOM's special tokens at 0-3, the 256 byte symbols next, then one token
 * per merge, most frequent pair first (ties: the smaller pair), until the vocabulary is full.
 */
public final class BpeTrainer {
    /** BLOOM's pre-tokenizer split: runs of non-space, non-punctuation with an optional leading space. */
    public static final String BLOOM_SPLIT = " ?[^(\\s|[.,!?…。，、।۔،])]+";
    static final List<String> SPECIAL = List.of("<unk>", "<s>", "</s>", "<pad>");

    private BpeTrainer() {}

    public static String train(List<String> corpus, int vocabSize) {
        int base = SPECIAL.size() + 256;
        if (vocabSize <= base) throw new IllegalArgumentException("vocab size must exceed " + base + " (special tokens and bytes)");
        List<String> symbols = new ArrayList<>();                      // id - SPECIAL.size() → symbol
        Map<String, Integer> symbolIds = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            String c = String.valueOf(ByteLevel.charOf(b));
            symbolIds.put(c, symbols.size());
            symbols.add(c);
        }
        Words words = Words.count(corpus, symbolIds);
        List<String[]> merges = new ArrayList<>();
        while (symbols.size() + SPECIAL.size() < vocabSize) {
            long pair = words.bestPair();
            if (pair < 0) break;                                         // nothing left to merge
            int left = (int) (pair >>> 32);
            int right = (int) pair;
            String merged = symbols.get(left) + symbols.get(right);
            int id = symbols.size();
            symbols.add(merged);
            merges.add(new String[]{symbols.get(left), symbols.get(right)});
            words.merge(left, right, id);
        }
        return json(symbols, merges);
    }

    private static String json(List<String> symbols, List<String[]> merges) {
        JsonObject root = new JsonObject();
        root.addProperty("version", "1.0");
        JsonArray added = new JsonArray();
        for (int i = 0; i < SPECIAL.size(); i++) {
            JsonObject t = new JsonObject();
            t.addProperty("id", i);
            t.addProperty("content", SPECIAL.get(i));
            t.addProperty("single_word", false);
            t.addProperty("lstrip", false);
            t.addProperty("rstrip", false);
            t.addProperty("normalized", false);
            t.addProperty("special", true);
            added.add(t);
        }
        root.add("added_tokens", added);
        root.add("normalizer", com.google.gson.JsonNull.INSTANCE);
        root.add("pre_tokenizer", JsonParser.parseString("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
                + new com.google.gson.JsonPrimitive(BLOOM_SPLIT) + "},\"behavior\":\"Isolated\",\"invert\":false},"
                + "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]}"));
        root.add("post_processor", JsonParser.parseString("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false,\"use_regex\":false}"));
        root.add("decoder", JsonParser.parseString("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":false}"));
        JsonObject model = new JsonObject();
        model.addProperty("type", "BPE");
        model.add("dropout", com.google.gson.JsonNull.INSTANCE);
        model.add("unk_token", new com.google.gson.JsonPrimitive("<unk>"));
        model.addProperty("continuing_subword_prefix", "");
        model.addProperty("end_of_word_suffix", "");
        model.addProperty("fuse_unk", false);
        model.addProperty("byte_fallback", false);
        JsonObject vocab = new JsonObject();
        for (int i = 0; i < SPECIAL.size(); i++) vocab.addProperty(SPECIAL.get(i), i);
        for (int i = 0; i < symbols.size(); i++) vocab.addProperty(symbols.get(i), i + SPECIAL.size());
        model.add("vocab", vocab);
        JsonArray mergeList = new JsonArray();
        for (String[] m : merges) mergeList.add(m[0] + " " + m[1]);
        model.add("merges", mergeList);
        root.add("model", model);
        return new GsonBuilder().disableHtmlEscaping().create().toJson(root) + "\n";
    }

    /** Distinct pre-tokenized words as symbol-id sequences with their counts, and pair statistics. */
    private static final class Words {
        private final List<int[]> words = new ArrayList<>();
        private final List<Integer> counts = new ArrayList<>();
        private final Map<Long, Long> pairCounts = new HashMap<>();
        private final Map<Long, Set<Integer>> where = new HashMap<>();
        private final PriorityQueue<long[]> queue = new PriorityQueue<>((a, b) ->
                a[1] != b[1] ? Long.compare(b[1], a[1]) : Long.compare(a[0], b[0]));

        static Words count(List<String> corpus, Map<String, Integer> symbolIds) {
            PreTokenizer split = PreTokenizer.isolated(Pattern.compile(BLOOM_SPLIT, Pattern.UNICODE_CHARACTER_CLASS));
            Map<String, Integer> freq = new LinkedHashMap<>();
            for (String text : corpus) {
                for (PreTokenizer.Piece p : split.split(List.of(new PreTokenizer.Piece(text, 0)))) {
                    freq.merge(ByteLevel.encode(p.text()), 1, Integer::sum);
                }
            }
            Words w = new Words();
            freq.forEach((word, n) -> {
                int[] ids = new int[word.length()];
                for (int i = 0; i < ids.length; i++) ids[i] = symbolIds.get(String.valueOf(word.charAt(i)));
                w.add(ids, n);
            });
            w.pairCounts.forEach((pair, n) -> w.queue.add(new long[]{pair, n}));
            return w;
        }

        private void add(int[] ids, int n) {
            int index = words.size();
            words.add(ids);
            counts.add(n);
            for (int i = 0; i + 1 < ids.length; i++) {
                long pair = key(ids[i], ids[i + 1]);
                pairCounts.merge(pair, (long) n, Long::sum);
                where.computeIfAbsent(pair, k -> new HashSet<>()).add(index);
            }
        }

        /** The most frequent pair with a current count, or -1. Stale queue entries are skipped. */
        long bestPair() {
            while (!queue.isEmpty()) {
                long[] top = queue.poll();
                long current = pairCounts.getOrDefault(top[0], 0L);
                if (current <= 0) continue;
                if (current != top[1]) {
                    queue.add(new long[]{top[0], current});
                    continue;
                }
                return top[0];
            }
            return -1;
        }

        void merge(int left, int right, int id) {
            long pair = key(left, right);
            Set<Integer> affected = where.remove(pair);
            pairCounts.remove(pair);
            if (affected == null) return;
            Map<Long, Long> changed = new HashMap<>();
            for (int index : affected) {
                int[] old = words.get(index);
                int n = counts.get(index);
                for (int i = 0; i + 1 < old.length; i++) adjust(key(old[i], old[i + 1]), -n, index, changed);
                int[] merged = new int[old.length];
                int m = 0;
                for (int i = 0; i < old.length; i++) {
                    if (i + 1 < old.length && old[i] == left && old[i + 1] == right) {
                        merged[m++] = id;
                        i++;
                    } else {
                        merged[m++] = old[i];
                    }
                }
                int[] word = java.util.Arrays.copyOf(merged, m);
                words.set(index, word);
                for (int i = 0; i + 1 < word.length; i++) adjust(key(word[i], word[i + 1]), n, index, changed);
            }
            pairCounts.remove(pair);
            changed.forEach((p, n) -> { if (n > 0) queue.add(new long[]{p, n}); });
        }

        private void adjust(long pair, long delta, int index, Map<Long, Long> changed) {
            long n = pairCounts.merge(pair, delta, Long::sum);
            if (n <= 0) pairCounts.remove(pair);
            if (delta > 0) where.computeIfAbsent(pair, k -> new HashSet<>()).add(index);
            changed.put(pair, Math.max(n, 0));
        }

        private static long key(int a, int b) { return ((long) a << 32) | (b & 0xFFFFFFFFL); }
    }
}
