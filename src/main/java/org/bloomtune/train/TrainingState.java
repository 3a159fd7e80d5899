package org.bloomtune.train;

import com.google.gson.Gson;
import com.google.gson.JsonParseException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a run stands at an optimizer-step boundary: steps done, the epoch, and how many of the
 * epoch's micro-batches are consumed. With the data order rebuilt from (seed, epoch), that is all
 * a resume needs besides the prompt and the optimizer moments.
 */
public record TrainingState(int step, int epoch, int batchInEpoch, int totalSteps, long seed) {
    static final String FILE = "trainer_state.json";

    void write(Path dir) {
        org.bloomtune.io.AtomicFiles.writeString(dir.resolve(FILE), new Gson().toJson(this) + "\n");
    }

    static TrainingState read(Path dir) {
        Path file = dir.resolve(FILE);
        try {
            TrainingState s = new Gson().fromJson(Files.readString(file), TrainingState.class);
            if (s == null || s.step() < 0 || s.epoch() < 0 || s.batchInEpoch() < 0) throw new IllegalArgumentException(file + ": invalid state");
            return s;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(file + ": not valid JSON (" + e.getMessage() + ")", e);
        }
    }
}
