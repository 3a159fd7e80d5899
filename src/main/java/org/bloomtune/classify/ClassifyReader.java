package org.bloomtune.classify;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;
import org.bloomtune.io.TextFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads texts to classify. TSV ({@code text<TAB>label}, as ChnSentiCorp and SST-2 ship; a first
 * line whose last column is {@code label} is a header) or JSON list / JSONL of objects with
 * {@code text} (or {@code sentence}) and {@code label}. Labels are optional unless
 * {@code needLabels}; a label may be a string or a number. A bad row names its file and line.
 */
public final class ClassifyReader {
    private ClassifyReader() {}

    public static List<ClassifyRecord> read(Path file, boolean needLabels) {
        String text = TextFiles.readUtf8(file);
        String start = text.stripLeading();
        List<ClassifyRecord> records = start.startsWith("[") ? jsonList(file, text) : start.startsWith("{") ? jsonLines(file, text) : tsv(file, text);
        if (records.isEmpty()) throw new IllegalArgumentException(file + ": no records");
        if (needLabels) {
            for (ClassifyRecord r : records) if (r.label() == null) throw new IllegalArgumentException(r.where() + ": missing label");
        }
        return records;
    }

    private static List<ClassifyRecord> tsv(Path file, String text) {
        List<String> lines = text.lines().toList();
        List<ClassifyRecord> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) continue;
            String[] cols = line.split("\t", -1);
            if (i == 0 && cols.length >= 2 && cols[cols.length - 1].strip().equalsIgnoreCase("label")) continue;   // header
            String where = file + ": line " + (i + 1);
            if (cols.length > 2) throw new IllegalArgumentException(where + ": expected text<TAB>label, found " + cols.length + " columns");
            String body = cols[0].strip();
            if (body.isEmpty()) throw new IllegalArgumentException(where + ": empty text");
            String label = cols.length == 2 && !cols[1].isBlank() ? cols[1].strip() : null;
            out.add(new ClassifyRecord(body, label, where));
        }
        return out;
    }

    private static List<ClassifyRecord> jsonList(Path file, String text) {
        JsonElement root = Json.parse(text, file.toString());
        if (!root.isJsonArray()) throw new IllegalArgumentException(file + ": expected a JSON list of records");
        List<ClassifyRecord> out = new ArrayList<>();
        int i = 0;
        for (JsonElement e : root.getAsJsonArray()) out.add(record(e, file + ": record " + (++i)));
        return out;
    }

    private static List<ClassifyRecord> jsonLines(Path file, String text) {
        List<String> lines = text.lines().toList();
        List<ClassifyRecord> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) continue;
            String where = file + ": line " + (i + 1);
            out.add(record(Json.parse(lines.get(i), where), where));
        }
        return out;
    }

    private static ClassifyRecord record(JsonElement e, String where) {
        if (!e.isJsonObject()) throw new IllegalArgumentException(where + ": expected a JSON object {text, label}, found " + Json.kind(e));
        JsonObject o = e.getAsJsonObject();
        JsonElement t = o.has("text") ? o.get("text") : o.get("sentence");
        if (t == null || !t.isJsonPrimitive() || !t.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException(where + ": missing string field text");
        }
        if (t.getAsString().isBlank()) throw new IllegalArgumentException(where + ": empty text");
        JsonElement l = o.get("label");
        if (l != null && !l.isJsonNull() && (!l.isJsonPrimitive() || l.getAsJsonPrimitive().isBoolean())) {
            throw new IllegalArgumentException(where + ": label must be a string or number, found " + Json.kind(l));
        }
        return new ClassifyRecord(t.getAsString(), l == null || l.isJsonNull() ? null : l.getAsString(), where);
    }
}
