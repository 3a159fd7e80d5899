package org.bloomtune.data;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;
import org.bloomtune.io.TextFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads Alpaca-format data — a JSON list, or JSONL (one object per line) — with fields
 * {@code instruction}, {@code input} (optional) and {@code output}. A bad row (invalid JSON, a
 * missing or non-string field, an empty output or instruction) is reported with its file and
 * record (JSON) or line (JSONL) number: by default the whole read fails before training starts;
 * with {@code skipBadRows} it is skipped and counted. Nothing is dropped silently.
 */
public final class AlpacaReader {
    private AlpacaReader() {}

    public record Result(List<AlpacaRecord> records, List<String> skipped) {}

    public static Result read(Path file, boolean skipBadRows) {
        String text = TextFiles.readUtf8(file);
        List<AlpacaRecord> records = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        boolean jsonList = text.stripLeading().startsWith("[");
        List<String> rows = jsonList ? listRows(file, text) : text.lines().toList();
        for (int i = 0; i < rows.size(); i++) {
            if (!jsonList && rows.get(i).isBlank()) continue;
            String where = file + (jsonList ? ": record " + (i + 1) : ": line " + (i + 1));
            try {
                records.add(parse(rows.get(i), where));
            } catch (IllegalArgumentException e) {
                if (!skipBadRows) throw new IllegalArgumentException(e.getMessage() + " (use --skip-bad-rows to skip such rows)", e);
                skipped.add(e.getMessage());
            }
        }
        if (records.isEmpty()) throw new IllegalArgumentException(file + ": no usable records");
        return new Result(records, skipped);
    }

    private static List<String> listRows(Path file, String text) {
        JsonElement root = Json.parse(text, file.toString());
        if (!root.isJsonArray()) throw new IllegalArgumentException(file + ": expected a JSON list of records");
        List<String> rows = new ArrayList<>();
        for (JsonElement e : root.getAsJsonArray()) rows.add(e.toString());
        return rows;
    }

    private static AlpacaRecord parse(String row, String where) {
        JsonElement e = Json.parse(row, where);
        if (!e.isJsonObject()) throw new IllegalArgumentException(where + ": expected a JSON object {instruction, input, output}, found " + Json.kind(e));
        JsonObject o = e.getAsJsonObject();
        String instruction = field(o, "instruction", where, true);
        String input = field(o, "input", where, false);
        String output = field(o, "output", where, true);
        if (instruction.isBlank()) throw new IllegalArgumentException(where + ": empty instruction");
        if (output.isBlank()) throw new IllegalArgumentException(where + ": empty output");
        return new AlpacaRecord(instruction, input, output, where);
    }

    private static String field(JsonObject o, String name, String where, boolean required) {
        JsonElement v = o.get(name);
        if (v == null || v.isJsonNull()) {
            if (required) throw new IllegalArgumentException(where + ": missing field " + name);
            return "";
        }
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException(where + ": field " + name + " must be a string, found " + Json.kind(v));
        }
        return v.getAsString();
    }
}
