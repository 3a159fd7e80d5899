package org.bloomtune.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Reads the text files a user hands over (configs, tokenizers, data). Strict UTF-8: an invalid
 * byte is reported with its offset, not replaced; a leading byte-order mark, which editors on
 * Windows add, is dropped.
 */
public final class TextFiles {
    private static final char BOM = '\uFEFF';

    private TextFiles() {}

    public static String readUtf8(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new UncheckedIOException(file + ": no such file", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (OutOfMemoryError e) {
            throw new IllegalArgumentException(file + ": too large to read into memory", e);
        }
        String text = decode(bytes, file.toString());
        return !text.isEmpty() && text.charAt(0) == BOM ? text.substring(1) : text;
    }

    /** {@code bytes} as UTF-8; an invalid sequence is an error naming {@code where} and the byte offset. */
    public static String decode(byte[] bytes, String where) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = decoder.decode(in, out, true);
        if (r.isUnderflow()) r = decoder.flush(out);
        if (r.isError()) {
            throw new IllegalArgumentException(where + ": invalid UTF-8 at byte offset " + in.position()
                    + " (0x" + String.format("%02X", bytes[in.position()] & 0xFF) + "); save the file as UTF-8");
        }
        return out.flip().toString();
    }
}
