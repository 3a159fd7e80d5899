package org.bloomtune.train;

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.io.Json;

import java.nio.file.Path;

/**
 * Where a run stands at an optimizer-step boundary: steps done, the epoch, and how many of the
 * epoch's micro-batches are consumed. With the data order rebuilt from (seed, epoch), that is all
 * a resume needs besides the prompt and the optimizer moments.
 */
public record TrainingState(int step, int epoch, int batchInEpoch, int totalSteps, long seed) {
    static final String FILE = "trainer_state.json";

    void write(Path dir) {
        AtomicFiles.writeString(dir.resolve(FILE), new Gson().toJson(this) + "\n");
    }

    static TrainingState read(Path dir) {
        Path file = dir.resolve(FILE);
        JsonObject o = Json.readObject(file);
        try {
            TrainingState s = new TrainingState(Json.requiredInt(o, "step"), Json.requiredInt(o, "epoch"), Json.requiredInt(o, "batchInEpoch"),
                    Json.requiredInt(o, "totalSteps"), Json.toLong(o.get("seed"), "seed"));
            if (s.step() < 0 || s.epoch() < 0 || s.batchInEpoch() < 0) throw new IllegalArgumentException("negative step, epoch or batchInEpoch");
            return s;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }
}
