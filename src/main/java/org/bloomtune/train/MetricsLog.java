package org.bloomtune.train;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/** metrics.jsonl: one JSON object per optimizer step (and per evaluation), appended and flushed. */
final class MetricsLog {
    static final String FILE = "metrics.jsonl";
    private final Path file;

    MetricsLog(Path runDir) {
        this.file = runDir.resolve(FILE);
    }

    void append(JsonObject record) {
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, new Gson().toJson(record) + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** On resume: drop records of steps after the checkpoint, which the run will redo. */
    void truncateAfter(int step) {
        if (!Files.exists(file)) return;
        List<String> kept = new ArrayList<>();
        for (JsonObject r : read()) if (r.get("step").getAsInt() <= step) kept.add(new Gson().toJson(r));
        org.bloomtune.io.AtomicFiles.writeString(file, kept.isEmpty() ? "" : String.join("\n", kept) + "\n");
    }

    List<JsonObject> read() {
        if (!Files.exists(file)) return List.of();
        try {
            List<JsonObject> out = new ArrayList<>();
            for (String line : Files.readAllLines(file)) if (!line.isBlank()) out.add(JsonParser.parseString(line).getAsJsonObject());
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
