package org.bloomtune.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonArray;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The byte-level BPE against published vectors (GPT-2: transformers.js and llama.cpp) and against
 * the real HF tokenizers library on GPT-2's tokenizer.json and on a BLOOM-pipeline tokenizer.json
 * built from it, over Chinese, English, code, emoji, odd whitespace and invalid UTF-8.
 */
class TokenizerTest {
    static Path data;
    static Tokenizer gpt2;

    @BeforeAll
    static void load() {
        data = Reference.data("tokenizer");
        gpt2 = Tokenizer.load(data.resolve("gpt2/tokenizer.json"));
    }

    @Test
    void transformersJsVectorsGiveTheSameTokensAndIds() throws IOException {
        int cases = 0;
        for (JsonObject c : jsonl(data.resolve("gpt2/gpt2_transformersjs_vectors.jsonl"))) {
            String text = c.get("text").getAsString();
            long[] ids = gpt2.encode(text);
            assertArrayEquals(longs(c.getAsJsonArray("ids")), ids, c.get("name").getAsString());
            JsonArray tokens = c.getAsJsonArray("tokens");
            for (int i = 0; i < ids.length; i++) assertEquals(tokens.get(i).getAsString(), gpt2.token(ids[i]));
            assertEquals(text, gpt2.decode(ids));
            cases++;
        }
        assertEquals(26, cases);
    }

    @Test
    void llamaCppVectorsGiveTheSameIds() throws IOException {
        int cases = 0;
        for (JsonObject c : jsonl(data.resolve("gpt2/gpt2_test_vectors.jsonl"))) {
            String text = c.get("text").getAsString();
            assertArrayEquals(longs(c.getAsJsonArray("ids")), gpt2.encode(text), text);
            assertEquals(text, gpt2.decode(gpt2.encode(text)));
            cases++;
        }
        assertEquals(44, cases);
    }

    @Test
    void offsetsPointBackIntoTheText() {
        String text = "Hello 生活的真谛是 world<|endoftext|>!";
        Encoding e = gpt2.encodeWithOffsets(text);
        StringBuilder joined = new StringBuilder();
        int previousEnd = 0;
        for (int i = 0; i < e.size(); i++) {
            assertTrue(e.starts()[i] >= 0 && e.ends()[i] <= text.length() && e.starts()[i] < e.ends()[i], "span " + i);
            if (e.starts()[i] >= previousEnd) joined.append(text, e.starts()[i], e.ends()[i]);
            previousEnd = Math.max(previousEnd, e.ends()[i]);
        }
        assertEquals(text, joined.toString());
        assertEquals(50256, e.ids()[e.size() - 2], "the added token is matched whole");
    }

    @Test
    void matchesHfTokenizersOnGpt2AndOnABloomPipeline(@TempDir Path dir) throws IOException {
        Path bloomLike = bloomPipeline(dir);
        Tokenizer ours = Tokenizer.load(bloomLike);
        List<String> corpus = corpus();
        try (HuggingFaceTokenizer hfGpt2 = oracle(data.resolve("gpt2/tokenizer.json"));
             HuggingFaceTokenizer hfBloom = oracle(bloomLike)) {
            for (String text : corpus) {
                assertArrayEquals(hfGpt2.encode(text, false, false).getIds(), gpt2.encode(text), "GPT-2: " + text);
                assertArrayEquals(hfBloom.encode(text, false, false).getIds(), ours.encode(text), "BLOOM pipeline: " + text);
            }
        }
        assertTrue(corpus.size() > 100);
    }

    /** HF tokenizers as they encode by default in Python: no truncation, no padding, no special tokens added. */
    static HuggingFaceTokenizer oracle(Path tokenizerJson) throws IOException {
        return HuggingFaceTokenizer.builder().optTokenizerPath(tokenizerJson).optAddSpecialTokens(false)
                .optTruncation(false).optPadding(false).build();
    }

    /** GPT-2's vocabulary and merges with BLOOM's pre-tokenizer and decoder, as a tokenizer.json. */
    static Path bloomPipeline(Path dir) throws IOException {
        JsonObject t = JsonParser.parseString(Files.readString(data.resolve("gpt2/tokenizer.json"))).getAsJsonObject();
        t.add("pre_tokenizer", JsonParser.parseString("""
                {"type": "Sequence", "pretokenizers": [
                  {"type": "Split", "pattern": {"Regex": " ?[^(\\\\s|[.,!?…。，、।۔،])]+"}, "behavior": "Isolated", "invert": false},
                  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}"""));
        t.add("post_processor", JsonParser.parseString("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}"));
        t.add("decoder", JsonParser.parseString("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}"));
        Path file = dir.resolve("bloom-pipeline-tokenizer.json");
        Files.writeString(file, t.toString());
        return file;
    }

    static List<String> corpus() throws IOException {
        List<String> texts = new ArrayList<>();
        JsonArray zh = JsonParser.parseString(Files.readString(Reference.data("instruct_zh/alpaca_zh_demo.json"))).getAsJsonArray();
        JsonArray en = JsonParser.parseString(Files.readString(Reference.data("instruct_en/instruction-data.json"))).getAsJsonArray();
        for (int i = 0; i < 60; i++) {
            texts.add("Human: " + zh.get(i).getAsJsonObject().get("instruction").getAsString() + "\n\nAssistant: "
                    + zh.get(i).getAsJsonObject().get("output").getAsString());
            texts.add(en.get(i).getAsJsonObject().get("instruction").getAsString() + "\n" + en.get(i).getAsJsonObject().get("output").getAsString());
        }
        texts.add("def f(x):\n\treturn x ** 2  # square\n\n\nif __name__ == '__main__':\n    print(f(3))");
        texts.add("emoji 👍🏽 family 👨‍👩‍👧‍👦 flags 🏴󠁧󠁢󠁳󠁣󠁴󠁿 and ❤️");
        texts.add("  leading,   double  spaces\t\ttabs\r\nand trailing   ");
        texts.add("……。，、।۔، mixed punctuation!?  ¿Qué?");
        texts.add(new String(new byte[]{'b', 'a', 'd', (byte) 0xFF, (byte) 0xC3, ' ', 'u', 't', 'f', (byte) 0xE6, (byte) 0x97}, StandardCharsets.UTF_8));
        texts.add("\u00A0nbsp\u3000ideographic space\u2028line separator");
        return texts;
    }

    static List<JsonObject> jsonl(Path file) throws IOException {
        List<JsonObject> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) if (!line.isBlank()) out.add(JsonParser.parseString(line).getAsJsonObject());
        return out;
    }

    static long[] longs(JsonArray a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsLong();
        return out;
    }

}
