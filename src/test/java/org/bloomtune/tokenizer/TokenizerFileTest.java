package org.bloomtune.tokenizer;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A malformed tokenizer.json is refused with a one-line message naming the file and the field —
 * the cases a fuzz of the embedded tokenizer turned into Java stack traces or silent acceptance.
 */
class TokenizerFileTest {
    static JsonObject base;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() throws IOException {
        base = JsonParser.parseString(Files.readString(Path.of("models/bloom-tiny/tokenizer.json"))).getAsJsonObject();
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "model                          | null                              | missing field model",
            "model                          | []                                | field model must be an object, found a list",
            "model.type                     | 7                                 | field model.type must be a string, found a number",
            "model.vocab                    | null                              | missing field model.vocab",
            "model.merges                   | null                              | missing field model.merges",
            "model.merges                   | \"a b\"                           | field model.merges must be a list, found a string",
            "model.merges                   | [\"Ġ t h\"]                        | model.merges[0] \"Ġ t h\" is not a pair of two tokens",
            "model.merges                   | [\"q zzz\"]                        | model.merges[0] 'q zzz': 'zzz' is not in model.vocab",
            "model.vocab.Ġ                  | 5.5                               | field model.vocab[\"Ġ\"] must be an integer, found 5.5",
            "model.vocab.Ġ                  | 4                                 | model.vocab gives id 4 to both",
            "added_tokens                   | \"</s>\"                          | field added_tokens must be a list, found a string",
            "added_tokens                   | [{\"content\": \"</s>\"}]          | missing field added_tokens[0].id",
            "pre_tokenizer                  | {\"type\": \"Split\", \"behavior\": \"Isolated\"} | missing field pre_tokenizer.pattern",
            "pre_tokenizer                  | {\"type\": \"Split\", \"behavior\": \"Isolated\", \"pattern\": {\"Regex\": \"(\"}} | pre_tokenizer.pattern.Regex is not a valid regular expression",
            "pre_tokenizer                  | {\"type\": \"Whitespace\"}          | pre_tokenizer.type Whitespace is not supported",
            "normalizer                     | {\"type\": \"NFC\"}                 | normalizer \"NFC\" is not supported",
    })
    void malformedFieldsAreNamed(String path, String value, String expected) throws IOException {
        JsonObject t = base.deepCopy();
        set(t, path.strip(), JsonParser.parseString(value.strip()));
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, t.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(expected.strip()), "expected '" + expected.strip() + "' in: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    /** Sets a dotted path ("model.vocab.Ġ"); the last part may be a key with any characters. */
    private static void set(JsonObject root, String path, JsonElement value) {
        String[] parts = path.split("\\.", 3);
        JsonObject o = root;
        for (int i = 0; i < parts.length - 1; i++) o = o.getAsJsonObject(parts[i]);
        o.add(parts[parts.length - 1], value);
    }
}
