package org.bloomtune.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonArray;
import com.google.gson.JsonParser;
import org.bloomtune.cli.Main;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The embedded default's tokenizer: reproducible from the shipped data, and read by HF tokenizers exactly as by us. */
class BpeTrainerTest {
    static final Path DEMO_DATA = Path.of("models/demo-data/alpaca_zh_demo_first300.json");
    static final Path EMBEDDED = Path.of("models/bloom-tiny/tokenizer.json");

    @Test
    void embeddedTokenizerIsWhatTrainTokenizerWrites(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("tokenizer.json");
        assertEquals(0, Main.run("train-tokenizer", "--data", DEMO_DATA.toString(), "--vocab-size", "4096", "--output", out.toString()));
        assertEquals(Files.readString(EMBEDDED), Files.readString(out));
    }

    @Test
    void hfTokenizersReadsOurFileAndAgrees() throws IOException {
        Tokenizer ours = Tokenizer.load(EMBEDDED);
        assertEquals(4096, ours.vocabSize());
        assertEquals(2, ours.id("</s>"));
        assertEquals(3, ours.id("<pad>"));
        List<String> texts = new ArrayList<>(TokenizerTest.corpus());
        JsonArray demo = JsonParser.parseString(Files.readString(DEMO_DATA)).getAsJsonArray();
        texts.add("Human: " + demo.get(0).getAsJsonObject().get("instruction").getAsString() + "\n\nAssistant: </s>");
        try (HuggingFaceTokenizer hf = TokenizerTest.oracle(EMBEDDED)) {
            for (String text : texts) {
                long[] ids = ours.encode(text);
                assertArrayEquals(hf.encode(text, false, false).getIds(), ids, text);
                assertEquals(text, ours.decode(ids));
            }
        }
        // Trained on Chinese, it should compress Chinese well below one token per UTF-8 byte.
        String zh = demo.get(5).getAsJsonObject().get("output").getAsString();
        assertTrue(ours.encode(zh).length < zh.getBytes(java.nio.charset.StandardCharsets.UTF_8).length / 2.0);
    }

    @Test
    void tooSmallAVocabularyIsAClearError() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> BpeTrainer.train(List.of("abc"), 100));
        assertTrue(e.getMessage().contains("vocab size must exceed 260"));
    }
}
