package org.bloomtune.classify;

import org.bloomtune.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Verbalizer files and inline specs: what they mean, and a clear error for each way to get them wrong. */
class VerbalizerTest {
    static final Tokenizer TINY = Tokenizer.load(Path.of("models/bloom-tiny/tokenizer.json"));

    @TempDir
    Path dir;

    @Test
    void theSeedsExampleWorksInline() {
        Verbalizer v = Verbalizer.fromArgument("积极→好，消极→差");
        assertEquals(List.of("积极", "消极"), v.labelNames());
        assertEquals(Map.of("积极", List.of("好"), "消极", List.of("差")), v.labels());
        assertEquals(Verbalizer.DEFAULT_PATTERN, v.pattern());
        LabelWords words = LabelWords.encode(v, TINY, 4096);
        assertArrayEquals(TINY.encode("好"), words.word(0, 0));
        assertArrayEquals(TINY.encode("差"), words.word(1, 0));
        assertEquals(List.of("好", "棒"), Verbalizer.inline("积极->好|棒, 消极->差").labels().get("积极"));
    }

    @Test
    void shippedVerbalizersReadAndMapDataLabels() {
        Verbalizer zh = Verbalizer.load(Path.of("models/verbalizers/sentiment-zh.json"));
        assertEquals(0, zh.labelIndex("positive", "row 1"));
        assertEquals(1, zh.labelIndex("消极", "row 2"));
        Verbalizer en = Verbalizer.load(Path.of("models/verbalizers/sentiment-en.json"));
        assertEquals(1, en.labelIndex("0", "row 1"));
        assertEquals(en, Verbalizer.parse(en.toJson(), en.source()), "toJson round-trips");
    }

    @Test
    void patternSplitsAroundTheTextAndTruncationKeepsTheSuffix() {
        Verbalizer v = new Verbalizer("评论：{text}。总之很", Map.of("积极", List.of("好"), "消极", List.of("差")), Map.of(), "t");
        ClassifyEncoder e = new ClassifyEncoder(TINY, LabelWords.encode(v, TINY, 4096), 16);
        long[] prefix = TINY.encode("评论：");
        long[] suffix = TINY.encode("。总之很");
        long[] ids = e.ids("这家酒店的服务非常周到，早餐也很丰富，下次还会再来住的");
        assertEquals(16, ids.length);
        assertArrayEquals(prefix, java.util.Arrays.copyOf(ids, prefix.length));
        assertArrayEquals(suffix, java.util.Arrays.copyOfRange(ids, 16 - suffix.length, 16));
    }

    @Test
    void badVerbalizersNameTheProblem() throws Exception {
        assertError("{\"labels\": {\"积极\": [\"好\"], \"消极\": []}}", "label '消极' has an empty word list");
        assertError("{\"labels\": {\"积极\": [\"好\"], \"消极\": [\"\"]}}", "label '消极' has an empty word");
        assertError("{\"pattern\": \"总之很\", \"labels\": {\"a\": \"好\", \"b\": \"差\"}}", "pattern must contain {text}");
        assertError("{\"labels\": {\"a\": \"好\"}}", "needs at least two labels");
        assertError("{\"labels\": {\"a\": \"好\", \"b\": \"差\"}, \"data_labels\": {\"positive\": \"积极\"}}",
                "data_labels maps 'positive' to unknown label '积极'");
        assertError("{\"labels\": [\"好\"]}", "field labels must be an object");
        assertError("{\"labels\": {\"a\": 1, \"b\": \"差\"}}", "field labels.a must be a string");
        assertError("{labels", "v.json: invalid JSON at column 3");
        Verbalizer v = Verbalizer.inline("积极→好，消极→差");
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> v.labelIndex("neutral", "data.tsv: line 7"));
        assertTrue(unknown.getMessage().contains("data.tsv: line 7: unknown label 'neutral'"), unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Verbalizer.fromArgument(dir.resolve("missing.json").toString()));
    }

    @Test
    void aWordTheTokenizerCannotEncodeIsNamed() throws Exception {
        Path tokenizer = asciiOnlyTokenizer();
        Verbalizer v = Verbalizer.inline("pos→good，neg→差");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LabelWords.encode(v, Tokenizer.load(tokenizer), 4096));
        assertTrue(e.getMessage().contains("label 'neg' word '差' cannot be encoded by the tokenizer"), e.getMessage());
        IllegalArgumentException outside = assertThrows(IllegalArgumentException.class,
                () -> LabelWords.encode(Verbalizer.inline("积极→好，消极→差"), TINY, 10));
        assertTrue(outside.getMessage().contains("outside the model's vocabulary of 10"), outside.getMessage());
    }

    private void assertError(String json, String message) throws Exception {
        Path f = dir.resolve("v.json");
        Files.writeString(f, json);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Verbalizer.load(f));
        assertTrue(e.getMessage().startsWith(f.toString()), "names the file: " + e.getMessage());
        assertTrue(e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
    }

    /** A byte-level BPE whose vocabulary has the printable ASCII bytes only. */
    private Path asciiOnlyTokenizer() throws Exception {
        StringBuilder vocab = new StringBuilder();
        for (int c = 33; c < 127; c++) {
            if (vocab.length() > 0) vocab.append(',');
            vocab.append(new com.google.gson.Gson().toJson(String.valueOf((char) c))).append(':').append(c - 33);
        }
        vocab.append(",\"Ġ\":94");
        String json = "{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":null,"
                + "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},"
                + "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
                + "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"vocab\":{" + vocab + "},\"merges\":[]}}";
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, json);
        return f;
    }
}
