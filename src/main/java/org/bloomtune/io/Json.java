package org.bloomtune.io;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;

import java.io.IOException;
import java.io.StringReader;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Strict JSON (RFC 8259, as Python's and Rust's writers produce it) with one-line errors that
 * name the source, line and column. Gson's own parser is lenient by default — it reads
 * {@code NaN} or an unquoted word as a string and stops at trailing garbage without a word — and
 * its messages span lines and link to its troubleshooting page; neither belongs in front of a user.
 * The field readers check types exactly: {@code 10.5} is not an int, {@code 2^63} does not fit one.
 */
public final class Json {
    private static final Pattern POSITION = Pattern.compile("^(?:.*?: )?(.*?) at line (\\d+) column (\\d+) path (\\S*)", Pattern.DOTALL);

    private Json() {}

    /** The JSON document in {@code file}, which must be an object. */
    public static JsonObject readObject(Path file) {
        JsonElement root = parse(TextFiles.readUtf8(file), file.toString());
        if (!root.isJsonObject()) throw new IllegalArgumentException(file + ": expected a JSON object, found " + kind(root));
        return root.getAsJsonObject();
    }

    /** Parses {@code text} strictly; {@code where} (a file, "file: line 3") starts any error message. */
    public static JsonElement parse(String text, String where) {
        if (text.isBlank()) throw new IllegalArgumentException(where + ": empty, expected JSON");
        JsonReader reader = new JsonReader(new StringReader(text));
        reader.setStrictness(Strictness.STRICT);
        try {
            JsonElement root = JsonParser.parseReader(reader);
            if (reader.peek() != JsonToken.END_DOCUMENT) {
                Matcher m = Pattern.compile("line (\\d+) column (\\d+)").matcher(reader.toString());
                String at = m.find() ? position(text, Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))) : "";
                throw new IllegalArgumentException(where + ": invalid JSON" + at + ": unexpected data after the end of the document");
            }
            return root;
        } catch (JsonParseException | IOException | IllegalStateException | StackOverflowError e) {
            throw new IllegalArgumentException(where + ": invalid JSON" + describe(e, text), e);
        }
    }

    // ": <what> at line L, column C" from gson's "<what> at line L column C path P\nSee https://...".
    private static String describe(Throwable e, String text) {
        if (e instanceof StackOverflowError) return ": nested too deeply";
        String message = e.getMessage() == null ? "" : e.getMessage();
        Matcher m = POSITION.matcher(message);
        if (!m.find()) return message.isEmpty() ? "" : ": " + message.lines().findFirst().orElse("");
        String what = m.group(1);
        int line = Integer.parseInt(m.group(2));
        int column = Integer.parseInt(m.group(3));
        if (what.startsWith("Use JsonReader.setStrictness")) what = "unexpected text" + near(text, line, column);
        else if (what.startsWith("End of input")) what = "the document ends early (truncated?)";
        else if (what.startsWith("Unescaped control characters")) what = "a control character (e.g. a raw newline) inside a string";
        String path = m.group(4);
        return position(text, line, column) + (path.equals("$") || path.equals("$.") ? "" : " (in " + path + ")") + ": " + what;
    }

    // A one-line text (a JSONL row, a header) has columns only; the caller already said which line.
    private static String position(String text, int line, int column) {
        return text.indexOf('\n') < 0 ? " at column " + column : " at line " + line + ", column " + column;
    }

    private static String near(String text, int line, int column) {
        String[] lines = text.split("\n", -1);
        if (line < 1 || line > lines.length) return "";
        String l = lines[line - 1];
        int from = Math.max(0, Math.min(l.length(), column - 2));
        String snippet = l.substring(from, Math.min(l.length(), from + 16)).strip();
        return snippet.isEmpty() ? " (trailing data or a missing value)" : " near '" + snippet + "'";
    }

    /** "an array", "a string", ... for messages. */
    public static String kind(JsonElement e) {
        if (e == null || e.isJsonNull()) return "null";
        if (e.isJsonObject()) return "an object";
        if (e.isJsonArray()) return "a list";
        JsonPrimitive p = e.getAsJsonPrimitive();
        return p.isString() ? "a string" : p.isNumber() ? "a number" : "a boolean";
    }

    /** True when {@code key} is present and not null. */
    public static boolean has(JsonObject o, String key) {
        return o.has(key) && !o.get(key).isJsonNull();
    }

    public static int requiredInt(JsonObject o, String key) {
        if (!has(o, key)) throw new IllegalArgumentException("missing field " + key);
        return toInt(o.get(key), key);
    }

    public static int optionalInt(JsonObject o, String key, int fallback) {
        return has(o, key) ? toInt(o.get(key), key) : fallback;
    }

    /** {@code value} as an int: a JSON number with no fractional part that fits 32 bits. */
    public static int toInt(JsonElement value, String field) {
        long v = toLong(value, field);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) throw new IllegalArgumentException("field " + field + " is out of range: " + value);
        return (int) v;
    }

    public static long toLong(JsonElement value, String field) {
        if (value == null || !value.isJsonPrimitive() || !value.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException("field " + field + " must be an integer, found " + kind(value) + (value == null ? "" : ": " + value));
        }
        BigDecimal d;
        try {
            d = value.getAsBigDecimal();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("field " + field + " must be an integer, found " + value);
        }
        if (d.signum() != 0 && d.stripTrailingZeros().scale() > 0) throw new IllegalArgumentException("field " + field + " must be an integer, found " + value);
        try {
            return d.longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("field " + field + " is out of range: " + value);
        }
    }

    /** A finite JSON number. */
    public static double number(JsonObject o, String key, double fallback) {
        if (!has(o, key)) return fallback;
        JsonElement v = o.get(key);
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException("field " + key + " must be a number, found " + kind(v) + ": " + v);
        }
        double d = v.getAsDouble();
        if (!Double.isFinite(d)) throw new IllegalArgumentException("field " + key + " is not a finite number: " + v);
        return d;
    }

    public static boolean bool(JsonObject o, String key, boolean fallback) {
        if (!has(o, key)) return fallback;
        JsonElement v = o.get(key);
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isBoolean()) {
            throw new IllegalArgumentException("field " + key + " must be true or false, found " + kind(v) + ": " + v);
        }
        return v.getAsBoolean();
    }

    public static String requiredString(JsonObject o, String key) {
        if (!has(o, key)) throw new IllegalArgumentException("missing field " + key);
        return toStringValue(o.get(key), key);
    }

    /** The string at {@code key}, or null when absent or null. */
    public static String optionalString(JsonObject o, String key) {
        return has(o, key) ? toStringValue(o.get(key), key) : null;
    }

    public static String toStringValue(JsonElement v, String field) {
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException("field " + field + " must be a string, found " + kind(v));
        }
        return v.getAsString();
    }

    /** The object at {@code key}, required. */
    public static JsonObject object(JsonObject o, String key) {
        if (!has(o, key)) throw new IllegalArgumentException("missing field " + key);
        JsonElement v = o.get(key);
        if (!v.isJsonObject()) throw new IllegalArgumentException("field " + key + " must be an object, found " + kind(v));
        return v.getAsJsonObject();
    }

    /** The list at {@code key}, required. */
    public static com.google.gson.JsonArray array(JsonObject o, String key) {
        if (!has(o, key)) throw new IllegalArgumentException("missing field " + key);
        JsonElement v = o.get(key);
        if (!v.isJsonArray()) throw new IllegalArgumentException("field " + key + " must be a list, found " + kind(v));
        return v.getAsJsonArray();
    }
}
