package org.bloomtune.train;

import org.bloomtune.io.AtomicFiles;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.SoftPrompt;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Training checkpoints: {@code checkpoint-STEP/} holds the PEFT adapter, the AdamW moments
 * ({@code optimizer.safetensors}) and {@link TrainingState}. Each is written into a temporary
 * directory and renamed into place, so a crash leaves the previous checkpoint intact and never a
 * half-written one. The two newest are kept.
 */
final class Checkpoints {
    static final String PREFIX = "checkpoint-";
    static final String OPTIMIZER = "optimizer.safetensors";

    private Checkpoints() {}

    /** Where the checkpoint of {@code step} lies in {@code runDir}. */
    static Path of(Path runDir, int step) { return runDir.resolve(PREFIX + step); }

    static Path save(Path runDir, AdapterConfig config, SoftPrompt prompt, AdamW adam, TrainingState state, RunSettings settings) {
        Path target = of(runDir, state.step());
        try {
            Path tmp = AtomicFiles.newSiblingDirectory(runDir.resolve("checkpoint"), "");
            PeftAdapter.save(tmp.resolve("adapter"), config, prompt);
            Map<String, Tensor> moments = new LinkedHashMap<>();
            moments.put("exp_avg", adam.exp());
            moments.put("exp_avg_sq", adam.expSq());
            SafetensorsWriter.write(tmp.resolve(OPTIMIZER), moments, Map.of("format", "pt", "step", Long.toString(adam.steps())));
            state.write(tmp);
            settings.write(tmp);
            AtomicFiles.replaceDirectory(tmp, target);
            prune(runDir, 2);
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write checkpoint " + target + ": " + e.getMessage(), e);
        }
    }

    /** Removes every checkpoint in {@code runDir} (an earlier run's, on overwrite). */
    static void clear(Path runDir) {
        if (!Files.isDirectory(runDir)) return;
        try {
            prune(runDir, 0);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clear old checkpoints in " + runDir + ": " + e.getMessage(), e);
        }
    }

    static Optional<Path> latest(Path runDir) {
        if (!Files.isDirectory(runDir)) return Optional.empty();
        try (Stream<Path> s = Files.list(runDir)) {
            return s.filter(p -> p.getFileName().toString().startsWith(PREFIX) && Files.isRegularFile(p.resolve(TrainingState.FILE)))
                    .max(Comparator.comparingInt(Checkpoints::step));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + runDir + ": " + e.getMessage(), e);
        }
    }

    static AdamW loadOptimizer(Path checkpoint, double weightDecay) {
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve(OPTIMIZER))) {
            long step = Long.parseLong(f.metadata().getOrDefault("step", "-1"));
            if (step < 0) throw new IllegalArgumentException(checkpoint.resolve(OPTIMIZER) + ": no step in the metadata");
            return new AdamW(f.copy("exp_avg"), f.copy("exp_avg_sq"), step, weightDecay);
        }
    }

    static int step(Path checkpoint) {
        try {
            return Integer.parseInt(checkpoint.getFileName().toString().substring(PREFIX.length()));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static void prune(Path runDir, int keep) throws IOException {
        List<Path> all;
        try (Stream<Path> s = Files.list(runDir)) {
            all = s.filter(p -> p.getFileName().toString().startsWith(PREFIX)).sorted(Comparator.comparingInt(Checkpoints::step)).toList();
        }
        for (int i = 0; i < all.size() - keep; i++) AtomicFiles.deleteTree(all.get(i));
    }

}
