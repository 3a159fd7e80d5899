package org.bloomtune.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.Reference;
import org.bloomtune.io.Json;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The priority-queue BPE against the textbook one (rescan every adjacent pair, merge the best,
 * leftmost first, repeat) on GPT-2's real merges and on the embedded model's, for random byte
 * strings, long runs of Chinese and repetitive text where merges overlap.
 */
class BpeTest {
    record Table(Map<String, Integer> vocab, List<String[]> merges) {}

    static Table gpt2;
    static Table tiny;

    @BeforeAll
    static void load() {
        gpt2 = table(Reference.data("tokenizer/gpt2/tokenizer.json"));
        tiny = table(Path.of("models/bloom-tiny/tokenizer.json"));
    }

    @Test
    void equalsTheTextbookAlgorithmOnRandomBytes() {
        Bpe bpe = new Bpe(gpt2.vocab(), gpt2.merges(), null);
        Random random = new Random(7);
        for (int n = 0; n < 300; n++) {
            byte[] bytes = new byte[1 + random.nextInt(60)];
            // Mostly ASCII letters and spaces (where merges abound), some arbitrary bytes.
            for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (random.nextInt(4) == 0 ? random.nextInt(256) : "aeiou tnrsl".charAt(random.nextInt(11)));
            String piece = byteLevel(bytes);
            assertArrayEquals(textbook(gpt2, piece), bpe.encode(piece).ids(), "piece " + piece);
        }
    }

    @Test
    void equalsTheTextbookAlgorithmOnLongChineseRunsAndRepeats() throws Exception {
        Bpe bpe = new Bpe(tiny.vocab(), tiny.merges(), null);
        String zh = Files.readString(Reference.data("instruct_zh/alpaca_zh_demo.json"));
        StringBuilder han = new StringBuilder();
        zh.codePoints().filter(c -> Character.UnicodeScript.of(c) == Character.UnicodeScript.HAN).limit(1500).forEach(han::appendCodePoint);
        for (String text : List.of(han.toString(), "哈".repeat(700), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", " the the the the the")) {
            String piece = byteLevel(text.getBytes(StandardCharsets.UTF_8));
            assertArrayEquals(textbook(tiny, piece), bpe.encode(piece).ids(), text.substring(0, Math.min(20, text.length())));
        }
    }

    @Test
    void aMegabyteOfChineseWithoutSpacesRoundTrips() {
        Tokenizer tok = Tokenizer.load(Path.of("models/bloom-tiny/tokenizer.json"));
        String text = "我们今天学习字节对编码，它把常见的字节对合并成一个记号".replace("，", "").repeat(1 << 20 / 75);
        long[] ids = tok.encode(text);
        assertEquals(text, tok.decode(ids));
    }

    /** Merge the lowest-ranked adjacent pair (leftmost among equals) until none is listed: O(n²). */
    static int[] textbook(Table t, String piece) {
        Map<String, Integer> ranks = new HashMap<>();
        for (int i = 0; i < t.merges().size(); i++) ranks.putIfAbsent(t.merges().get(i)[0] + " " + t.merges().get(i)[1], i);
        List<String> symbols = new ArrayList<>();
        for (char c : piece.toCharArray()) symbols.add(String.valueOf(c));
        while (true) {
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
        return symbols.stream().mapToInt(s -> t.vocab().get(s)).toArray();
    }

    static String byteLevel(byte[] bytes) {
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) sb.append(ByteLevel.charOf(b & 0xFF));
        return sb.toString();
    }

    static Table table(Path tokenizerJson) {
        JsonObject model = Json.readObject(tokenizerJson).getAsJsonObject("model");
        Map<String, Integer> vocab = new HashMap<>();
        for (Map.Entry<String, JsonElement> e : model.getAsJsonObject("vocab").entrySet()) vocab.put(e.getKey(), e.getValue().getAsInt());
        List<String[]> merges = new ArrayList<>();
        for (JsonElement m : model.getAsJsonArray("merges")) {
            merges.add(m.isJsonArray() ? new String[]{m.getAsJsonArray().get(0).getAsString(), m.getAsJsonArray().get(1).getAsString()}
                    : m.getAsString().split(" ", 2));
        }
        return new Table(vocab, merges);
    }
}
