package org.bloomtune.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns token ids into text as they are generated. A byte-level token may end inside a character
 * (a Chinese character is three bytes, often split over two tokens), so the bytes of an incomplete
 * trailing character are held back until the tokens that complete it arrive, instead of being
 * printed as U+FFFD.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    public StreamingDecoder(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /** The text that {@code id} completes (possibly empty); an id the tokenizer lacks adds nothing, as in {@link Tokenizer#decode}. */
    public String push(long id) {
        if (!tokenizer.contains(id) || skipSpecialTokens && tokenizer.isSpecial(id)) return "";
        pending.writeBytes(tokenizer.bytes(id));
        byte[] bytes = pending.toByteArray();
        int complete = completePrefix(bytes);
        pending.reset();
        pending.write(bytes, complete, bytes.length - complete);
        return new String(bytes, 0, complete, StandardCharsets.UTF_8);
    }

    /** Whatever is still held back, invalid bytes as U+FFFD; the decoder is empty afterwards. */
    public String finish() {
        String rest = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return rest;
    }

    /** Length of the longest prefix that does not end inside a UTF-8 sequence still being completed. */
    static int completePrefix(byte[] b) {
        for (int back = 1; back <= Math.min(3, b.length); back++) {
            int lead = b[b.length - back] & 0xFF;
            if ((lead & 0xC0) == 0x80) continue;                  // a continuation byte: look further back
            int need = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF8 ? 4 : 1;
            return need > back ? b.length - back : b.length;
        }
        return b.length;
    }
}
