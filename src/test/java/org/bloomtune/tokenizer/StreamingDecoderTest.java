package org.bloomtune.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Text streamed token by token equals the whole decode, and never shows a half character. */
class StreamingDecoderTest {
    static final Tokenizer TINY = Tokenizer.load(Path.of("models/bloom-tiny/tokenizer.json"));

    @Test
    void chineseSplitAcrossTokensIsHeldBackUntilComplete() {
        String text = "如何缓解压力？多运动，早睡觉。Stress relief 👍🏽";
        long[] ids = TINY.encode(text);
        StreamingDecoder d = new StreamingDecoder(TINY, true);
        StringBuilder streamed = new StringBuilder();
        int splitTokens = 0;
        for (long id : ids) {
            String chunk = d.push(id);
            assertFalse(chunk.contains("\uFFFD"), "a chunk showed a replacement character: " + chunk);
            if (TINY.bytes(id).length > 0 && chunk.isEmpty()) splitTokens++;
            streamed.append(chunk);
        }
        streamed.append(d.finish());
        assertEquals(text, streamed.toString());
        System.out.println(splitTokens + " of " + ids.length + " tokens ended inside a character");
    }

    @Test
    void specialTokensAreSkippedAndATruncatedCharacterEndsAsReplacement() {
        StreamingDecoder d = new StreamingDecoder(TINY, true);
        assertEquals("", d.push(2));                                           // </s>
        StringBuilder out = new StringBuilder();
        for (long id : TINY.encode("中")) out.append(d.push(id));
        assertEquals("中", out.append(d.finish()).toString());
        StreamingDecoder cut = new StreamingDecoder(TINY, true);
        assertEquals("", cut.push(TINY.id(String.valueOf(ByteLevel.charOf(0xE4)))));   // the first of 中's three bytes
        assertEquals("\uFFFD", cut.finish());
        assertEquals("hi", TINY.decode(concat(TINY.encode("hi"), 2), true));
        assertEquals("hi</s>", TINY.decode(concat(TINY.encode("hi"), 2), false));
    }

    @Test
    void completePrefixStopsBeforeAnUnfinishedSequence() {
        byte[] zhong = "中".getBytes(StandardCharsets.UTF_8);          // E4 B8 AD
        assertEquals(0, StreamingDecoder.completePrefix(new byte[]{zhong[0]}));
        assertEquals(0, StreamingDecoder.completePrefix(new byte[]{zhong[0], zhong[1]}));
        assertEquals(3, StreamingDecoder.completePrefix(zhong));
        assertEquals(1, StreamingDecoder.completePrefix(new byte[]{'a', zhong[0], zhong[1]}));
        assertEquals(2, StreamingDecoder.completePrefix(new byte[]{'a', (byte) 0xFF}));      // invalid: let it through
        assertEquals(1, StreamingDecoder.completePrefix(new byte[]{'a', (byte) 0xF0, (byte) 0x9F, (byte) 0x91}));
    }

    private static long[] concat(long[] a, long b) {
        long[] out = java.util.Arrays.copyOf(a, a.length + 1);
        out[a.length] = b;
        return out;
    }
}
