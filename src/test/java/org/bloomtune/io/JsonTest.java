package org.bloomtune.io;

import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Strict JSON and UTF-8 with one-line messages that name the source, line and column. */
class JsonTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"input\": NaN}                    | column 11 (in $.input): unexpected text near 'NaN}'",
            "{\"a\": 1} trailing                 | unexpected",
            "{\"a\": 1}{\"b\": 2}                 | column",
            "{\"a\": [1, 2,                      | the document ends early (truncated?)",
            "{'a': 1}                            | unexpected text",
            "{\"a\" 1}                           | Expected ':'",
            "[1, 2,]                             | unexpected text",
    })
    void malformedJsonIsOneLineNamingWhereAndWhat(String text, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(text, "data.json"));
        assertTrue(e.getMessage().startsWith("data.json: invalid JSON"), e.getMessage());
        assertTrue(e.getMessage().contains(expected.strip()), e.getMessage());
        assertOneLineWithoutGsonInternals(e.getMessage());
    }

    @Test
    void emptyDocumentIsNamed() {
        assertEquals("x.json: empty, expected JSON", assertThrows(IllegalArgumentException.class, () -> Json.parse("  \n", "x.json")).getMessage());
    }

    @Test
    void byteOrderMarkIsDroppedAndInvalidUtf8NamesTheByteOffset() throws IOException {
        Path bom = dir.resolve("bom.json");
        Files.write(bom, concat(new byte[]{(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, "{\"a\": \"中\"}".getBytes(StandardCharsets.UTF_8)));
        assertEquals("中", Json.readObject(bom).get("a").getAsString());
        Path bad = dir.resolve("bad.json");
        Files.write(bad, concat("{\"a\": \"ok".getBytes(StandardCharsets.UTF_8), new byte[]{(byte) 0xC3, '"', '}'}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.readObject(bad));
        assertEquals(bad + ": invalid UTF-8 at byte offset 9 (0xC3); save the file as UTF-8", e.getMessage());
    }

    @Test
    void integersAreExact() {
        JsonObject o = Json.parse("{\"a\": 10.5, \"b\": 9223372036854775808, \"c\": 10.0, \"d\": \"7\", \"e\": 3000000000, \"f\": 1e2}", "c")
                .getAsJsonObject();
        assertEquals("field a must be an integer, found 10.5", assertThrows(IllegalArgumentException.class, () -> Json.requiredInt(o, "a")).getMessage());
        assertEquals("field b is out of range: 9223372036854775808", assertThrows(IllegalArgumentException.class, () -> Json.requiredInt(o, "b")).getMessage());
        assertEquals(10, Json.requiredInt(o, "c"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Json.requiredInt(o, "d")).getMessage().contains("found a string"));
        assertEquals("field e is out of range: 3000000000", assertThrows(IllegalArgumentException.class, () -> Json.requiredInt(o, "e")).getMessage());
        assertEquals(100, Json.requiredInt(o, "f"));
        assertEquals("missing field g", assertThrows(IllegalArgumentException.class, () -> Json.requiredInt(o, "g")).getMessage());
    }

    @Test
    void numbersMustBeFinite() {
        JsonObject o = Json.parse("{\"eps\": 1e999}", "c").getAsJsonObject();
        assertEquals("field eps is not a finite number: 1e999", assertThrows(IllegalArgumentException.class, () -> Json.number(o, "eps", 0)).getMessage());
    }

    static void assertOneLineWithoutGsonInternals(String message) {
        assertFalse(message.contains("\n"), message);
        assertFalse(message.contains("setStrictness") || message.contains("Troubleshooting") || message.contains("gson"), message);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
