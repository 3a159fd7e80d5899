package org.bloomtune.train;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.io.Json;
import org.bloomtune.peft.AdapterConfig;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The settings a checkpoint was made with — everything that decides the numbers an exact resume
 * must reproduce: the schedule and optimizer settings, batch and order, the prompt's size, the
 * task and model, and fingerprints of the data. Written into every checkpoint as
 * {@code run_settings.json}; a resume compares it with the settings of the run that resumes.
 * The output directory, checkpoint and eval intervals are left out: they change nothing trained.
 */
public record RunSettings(Map<String, String> values) {
    static final String FILE = "run_settings.json";

    public RunSettings {
        values = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    /** One setting that differs between a checkpoint and the run resuming it. */
    public record Change(String name, String before, String now) {
        @Override
        public String toString() { return name + " was " + quote(before) + ", now " + quote(now); }

        private static String quote(String v) { return v == null ? "(not recorded)" : v; }
    }

    static <E> RunSettings of(TrainConfig c, AdapterConfig adapter, TrainingTask<E> task, List<E> train, List<E> eval) {
        Map<String, String> v = new LinkedHashMap<>();
        v.put("epochs", Integer.toString(c.epochs()));
        v.put("max_steps", Integer.toString(c.maxSteps()));
        v.put("batch_size", Integer.toString(c.batchSize()));
        v.put("grad_accumulation", Integer.toString(c.accumulation()));
        v.put("lr", Double.toString(c.lr()));
        v.put("schedule", c.decay().name());
        v.put("warmup_ratio", Double.toString(c.warmupRatio()));
        v.put("weight_decay", Double.toString(c.weightDecay()));
        v.put("max_grad_norm", Double.toString(c.maxGradNorm()));
        v.put("reverse_pass", c.pass().name());
        v.put("group_by_length", Boolean.toString(c.groupByLength()));
        v.put("seed", Long.toString(c.seed()));
        v.put("num_virtual_tokens", Integer.toString(adapter.numVirtualTokens()));
        // Absent for prompt tuning, so checkpoints written before the other types existed still resume exactly.
        if (adapter.peftType() != org.bloomtune.peft.PeftType.PROMPT_TUNING) {
            v.put("peft_type", adapter.peftType().name());
            v.put("encoder", adapter.encoder().toString());
        }
        v.putAll(task.settings());
        v.put("train_data", fingerprint(task, train));
        v.put("eval_data", fingerprint(task, eval));
        return new RunSettings(v);
    }

    private static <E> String fingerprint(TrainingTask<E> task, List<E> examples) {
        DataFingerprint f = new DataFingerprint();
        for (E e : examples) {
            task.fingerprint(e, f);
            f.nextExample();
        }
        return f.digest();
    }

    /** The settings that differ from {@code checkpoint}'s, in this run's order. */
    public List<Change> changesSince(RunSettings checkpoint) {
        List<Change> out = new ArrayList<>();
        for (Map.Entry<String, String> e : values.entrySet()) {
            String before = checkpoint.values.get(e.getKey());
            if (!Objects.equals(before, e.getValue())) out.add(new Change(e.getKey(), before, e.getValue()));
        }
        return out;
    }

    void write(Path dir) {
        JsonObject o = new JsonObject();
        values.forEach(o::addProperty);
        AtomicFiles.writeString(dir.resolve(FILE), new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n");
    }

    /** The settings saved in {@code checkpoint}; empty for checkpoints written before settings were recorded. */
    static RunSettings read(Path checkpoint) {
        Path file = checkpoint.resolve(FILE);
        if (!Files.exists(file)) return new RunSettings(Map.of());
        Map<String, String> v = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : Json.readObject(file).entrySet()) {
            try {
                v.put(e.getKey(), Json.toStringValue(e.getValue(), e.getKey()));
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException(file + ": " + ex.getMessage(), ex);
            }
        }
        return new RunSettings(v);
    }
}
