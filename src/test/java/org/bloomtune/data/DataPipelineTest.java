package org.bloomtune.data;

import org.bloomtune.tensor.Tensors;
import org.bloomtune.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataPipelineTest {
    static final Tokenizer TOKENIZER = Tokenizer.load(Path.of("models/bloom-tiny/tokenizer.json"));

    @TempDir
    Path dir;

    @Test
    void seedTemplateHasNoStrayBlankLine() {
        assertEquals("Human: 写诗\n\nAssistant: ", PromptTemplate.SEED.prompt(new AlpacaRecord("写诗", "", "x", "t")));
        assertEquals("Human: 翻译\nhello\n\nAssistant: ", PromptTemplate.SEED.prompt(new AlpacaRecord("翻译", "hello", "x", "t")));
    }

    @Test
    void readsJsonListAndJsonlAndNamesBadRows() throws IOException {
        Path list = write("a.json", "[{\"instruction\":\"i\",\"input\":\"\",\"output\":\"o\"},{\"instruction\":\"j\",\"output\":\"p\"}]");
        assertEquals(2, AlpacaReader.read(list, false).records().size());
        Path jsonl = write("b.jsonl", "{\"instruction\":\"i\",\"output\":\"o\"}\n\n{\"instruction\":\"i\",\"output\":\"\"}\n{oops\n{\"instruction\":\"k\",\"output\":5}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AlpacaReader.read(jsonl, false));
        assertTrue(e.getMessage().contains(jsonl + ": line 3: empty output"), e.getMessage());
        AlpacaReader.Result r = AlpacaReader.read(jsonl, true);
        assertEquals(1, r.records().size());
        assertEquals(List.of(jsonl + ": line 3: empty output", jsonl + ": line 4: invalid JSON at column 3: unexpected text near 'oops'",
                jsonl + ": line 5: field output must be a string, found a number"), r.skipped());
        Path missing = write("c.json", "[{\"output\":\"o\"}]");
        e = assertThrows(IllegalArgumentException.class, () -> AlpacaReader.read(missing, true));
        assertTrue(e.getMessage().contains("no usable records"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AlpacaReader.read(missing, false));
        assertTrue(e.getMessage().contains(missing + ": record 1: missing field instruction"), e.getMessage());
    }

    @Test
    void responseOnlyLabelsAndTruncationThatKeepsTheResponse() {
        AlpacaRecord r = new AlpacaRecord("请把下面这句话翻译成英文，并解释其中的语法结构。", "今天天气很好，我们去公园散步吧。", "好的。", "t");
        ExampleEncoder full = new ExampleEncoder(TOKENIZER, PromptTemplate.SEED, 256, 2, false);
        Example e = full.encode(r);
        long[] prompt = TOKENIZER.encode(PromptTemplate.SEED.prompt(r));
        long[] response = TOKENIZER.encode("好的。");
        assertEquals(prompt.length + response.length + 1, e.length());
        assertEquals(2, e.ids()[e.length() - 1], "EOS appended");
        for (int i = 0; i < e.length(); i++) assertEquals(i < prompt.length ? -100 : e.ids()[i], e.labels()[i]);
        // Too long: the prompt gives way from its start; the response and the "Assistant:" cue stay.
        ExampleEncoder tight = new ExampleEncoder(TOKENIZER, PromptTemplate.SEED, response.length + 1 + 4, 2, false);
        Example t = tight.encode(r);
        assertEquals(response.length + 1 + 4, t.length());
        assertArrayEquals(java.util.Arrays.copyOfRange(prompt, prompt.length - 4, prompt.length), java.util.Arrays.copyOf(t.ids(), 4));
        Example all = new ExampleEncoder(TOKENIZER, PromptTemplate.SEED, 256, 2, true).encode(r);
        assertArrayEquals(all.ids(), all.labels(), "--loss-on-prompt labels every token");
    }

    @Test
    void collatorPadsRightWithMinusHundredLabels() {
        try (Batch b = Batch.collate(List.of(new Example(new long[]{5, 6, 7}, new long[]{-100, 6, 7}), new Example(new long[]{9}, new long[]{9})), 3)) {
            assertArrayEquals(new long[]{5, 6, 7, 9, 3, 3}, Tensors.toLongs(b.inputIds()));
            assertArrayEquals(new long[]{1, 1, 1, 1, 0, 0}, Tensors.toLongs(b.attentionMask()));
            assertArrayEquals(new long[]{-100, 6, 7, 9, -100, -100}, Tensors.toLongs(b.labels()));
            assertEquals(4, b.tokens());
        }
    }

    @Test
    void batchOrderIsSeededPerEpochAndCoversEveryExample() {
        List<Example> ex = java.util.stream.IntStream.range(0, 10).mapToObj(i -> new Example(new long[i + 1], new long[i + 1])).toList();
        BatchOrder order = new BatchOrder(4, 1, true);
        assertEquals(order.epoch(ex, 2), new BatchOrder(4, 1, true).epoch(ex, 2));
        assertTrue(!order.epoch(ex, 0).equals(order.epoch(ex, 1)));
        assertEquals(10, order.epoch(ex, 0).stream().mapToInt(List::size).sum());
        assertEquals(10, order.epoch(ex, 0).stream().flatMap(List::stream).distinct().count());
    }

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content);
        return p;
    }
}
