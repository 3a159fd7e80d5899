package org.bloomtune.generate;

import org.bloomtune.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Streamed text: stop strings end a row and are cut, text that may become one is held back, chunks are final. */
class TextStreamTest {
    static final Tokenizer TINY = Tokenizer.load(Path.of("models/bloom-tiny/tokenizer.json"));

    @Test
    void aStopStringEndsTheRowAndIsCutFromTheText() {
        List<String> chunks = new ArrayList<>();
        TextStream s = new TextStream(TINY, 1, List.of("\n\nHuman:"), (row, chunk) -> chunks.add(chunk));
        long[] ids = TINY.encode("多运动，早睡觉。\n\nHuman: 还有呢？");
        int fed = 0;
        for (long id : ids) {
            s.onToken(0, id);
            fed++;
            if (s.stopRow(0)) break;
        }
        s.finish();
        assertTrue(fed < ids.length, "the row ended at the stop string");
        assertEquals("多运动，早睡觉。", s.text(0));
        assertEquals("多运动，早睡觉。", String.join("", chunks));
        for (String c : chunks) assertFalse(c.contains("\n"), "a chunk released part of the stop string: " + c);
    }

    @Test
    void withoutAStopEverythingComesOutSpecialTokensSkipped() {
        List<String> chunks = new ArrayList<>();
        TextStream s = new TextStream(TINY, 2, List.of("END"), (row, chunk) -> chunks.add(row + ":" + chunk));
        for (long id : TINY.encode("你好 EN")) s.onToken(1, id);
        s.onToken(1, 2);                           // </s>
        assertFalse(s.stopRow(1));
        s.finish();
        assertEquals("你好 EN", s.text(1));
        assertEquals("", s.text(0));
        assertTrue(chunks.stream().allMatch(c -> c.startsWith("1:")));
    }
}
