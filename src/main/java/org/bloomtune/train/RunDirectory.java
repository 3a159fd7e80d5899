package org.bloomtune.train;

import org.bloomtune.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A run's output directory: {@code checkpoint-STEP/}, {@code metrics.jsonl}, {@code loss.png} and
 * {@code adapter/}. Decides, before any work is done, whether a run may start there, and clears
 * what an interrupted write left behind (hidden {@code .checkpoint.*} and {@code .adapter.*}
 * directories, {@code .*.tmp} files).
 */
public final class RunDirectory {
    static final String ADAPTER = "adapter";
    static final String LOSS_PLOT = "loss.png";

    private final Path dir;

    public RunDirectory(Path dir) {
        this.dir = dir;
    }

    public Path path() { return dir; }

    /** The newest complete checkpoint, if any. */
    public Optional<Path> latestCheckpoint() { return Checkpoints.latest(dir); }

    /** True when the directory holds any part of an earlier run. */
    public boolean holdsRun() {
        return latestCheckpoint().isPresent() || Files.exists(dir.resolve(MetricsLog.FILE)) || Files.exists(dir.resolve(ADAPTER));
    }

    /**
     * Checks that a run in {@code mode} may start here without losing anything unasked: a
     * {@link RunMode#NEW} run refuses a directory that holds one. Cheap; callers run it before
     * loading a model so the refusal costs nothing.
     */
    public void checkStart(RunMode mode) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IllegalArgumentException(dir + " exists and is not a directory");
        if (mode != RunMode.NEW || !holdsRun()) return;
        String at = latestCheckpoint().map(c -> "a run at step " + Checkpoints.step(c)).orElse("an earlier run's files");
        throw new IllegalArgumentException(dir + " holds " + at + "; resume it or overwrite it (the CLI: --resume or --overwrite)");
    }

    /** Removes leftovers of interrupted writes and, for {@link RunMode#OVERWRITE}, the earlier run. */
    void prepare(RunMode mode) {
        checkStart(mode);
        try {
            Files.createDirectories(dir);
            for (Path p : list()) {
                String name = p.getFileName().toString();
                boolean leftover = name.startsWith(".checkpoint.") || name.startsWith("." + ADAPTER + ".")
                        || (name.startsWith(".") && name.endsWith(".tmp"));
                if (leftover) AtomicFiles.deleteTree(p);
            }
            if (mode == RunMode.OVERWRITE) {
                Checkpoints.clear(dir);
                Files.deleteIfExists(dir.resolve(MetricsLog.FILE));
                Files.deleteIfExists(dir.resolve(LOSS_PLOT));
                if (Files.exists(dir.resolve(ADAPTER))) AtomicFiles.deleteTree(dir.resolve(ADAPTER));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare " + dir + ": " + e.getMessage(), e);
        }
    }

    private List<Path> list() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }

}
