package org.bloomtune.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's byte-to-character table: every byte maps to one printable character (printable ASCII
 * and Latin-1 map to themselves, the rest to U+0100 onwards), so BPE works on strings of bytes
 * without ever meeting a control character. " " becomes "Ġ", "\n" becomes "Ċ".
 */
final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[324];

    static {
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_TO_CHAR[b] = printable ? (char) b : (char) (256 + extra++);
        }
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        for (int b = 0; b < 256; b++) CHAR_TO_BYTE[BYTE_TO_CHAR[b]] = b;
    }

    private ByteLevel() {}

    /** The character standing for byte {@code b}. */
    static char charOf(int b) { return BYTE_TO_CHAR[b]; }

    /** The byte-level string of {@code text}'s UTF-8 bytes. */
    static String encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(out);
    }

    /** Back to bytes; characters outside the table (added tokens' text) pass through as UTF-8. */
    static void decode(String symbols, ByteArrayOutputStream out) {
        for (int i = 0; i < symbols.length(); i++) {
            char c = symbols.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b >= 0) {
                out.write(b);
            } else {
                out.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
            }
        }
    }
}
