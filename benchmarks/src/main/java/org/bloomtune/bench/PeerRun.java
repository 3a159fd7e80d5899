package org.bloomtune.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * The Python peer — HF transformers + PEFT, {@code benchmarks/peer/peer_step.py} — run on this
 * machine beside BloomTune, when {@code -Dbloomtune.bench.peer.python=PATH} names a Python that
 * imports torch, transformers and peft. Without it the tables fall back to the peer modeled from
 * its steps measured once ({@link #MODELED_FP32_SECONDS}) and say so.
 */
final class PeerRun {
    static final String SCRIPT = "benchmarks/peer/peer_step.py";
    /** A peer run that takes longer than this is stopped: its steps take 8–35 s each here. */
    private static final long TIMEOUT_MINUTES = 30;

    /**
     * The peer's best step at {@link StepFixture}'s bloom-560m shape (4 × 256 + 10, all labels) on this
     * machine kind with PyTorch's huge-page switch (benchmarks/FINDINGS.md): fp32, and bf16 autocast.
     */
    static final double MODELED_FP32_SECONDS = 20.5;
    static final double MODELED_BF16_SECONDS = 7.8;

    private PeerRun() {}

    /**
     * The modeled peer's seconds per position: its cost does not depend on the labels (it forms the
     * logits and their gradient at every position).
     */
    static double modeledSecondsPerPosition(String dtype) {
        return (dtype.equals("bf16") ? MODELED_BF16_SECONDS : MODELED_FP32_SECONDS) / (4.0 * (StepFixture.SEQ + StepFixture.VIRTUAL_TOKENS));
    }

    /** One timed step of the peer. */
    record Step(int step, double seconds, long tokens, long paddedTokens, double loss, long peakRssMib) {}

    /** The Python to run the peer with, if one is named. */
    static Optional<Path> python() {
        String p = System.getProperty("bloomtune.bench.peer.python", "");
        return p.isEmpty() ? Optional.empty() : Optional.of(Path.of(p));
    }

    /** The peer on the seed recipe's first {@code steps} batches as {@link PeerBatches} forms them. */
    static List<Step> realData(Path python, Path model, String dtype, int steps) {
        Path batches = null;
        try {
            batches = Files.createTempFile("bloomtune-peer-batches", ".jsonl");
            PeerBatches.write(model, batches, steps);
            return run(python, model, dtype, List.of("--batches", batches.toString()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            deleteQuietly(batches);
        }
    }

    /** The peer on {@code steps} steps of {@link StepFixture}'s 4 × 256 rows, labels on every token. */
    static List<Step> synthetic(Path python, Path model, String dtype, int steps) {
        return run(python, model, dtype, List.of("--synthetic", String.valueOf(steps)));
    }

    /** The peer's step at {@link StepFixture}'s bloom-560m shape: the mean and the best of the steps after its first. */
    record FixtureStep(String dtype, double meanSeconds, double bestSeconds, boolean measured) {}

    /** Measured now when a Python is named ({@value #FIXTURE_STEPS} steps), else the figures measured once on this machine kind. */
    static FixtureStep fixtureStep(String dtype) {
        Optional<Path> python = python();
        if (python.isEmpty()) {
            double s = dtype.equals("bf16") ? MODELED_BF16_SECONDS : MODELED_FP32_SECONDS;
            return new FixtureStep(dtype, s, s, false);
        }
        List<Step> timed = synthetic(python.get(), Checkpoints.random("bloom-560m"), dtype, FIXTURE_STEPS).subList(1, FIXTURE_STEPS);
        System.err.printf(Locale.ROOT, "peer %s, 4 × 256: %s%n", dtype, timed);
        return new FixtureStep(dtype, timed.stream().mapToDouble(Step::seconds).average().orElseThrow(),
                timed.stream().mapToDouble(Step::seconds).min().orElseThrow(), true);
    }

    private static final int FIXTURE_STEPS = 4;

    private static List<Step> run(Path python, Path model, String dtype, List<String> source) {
        List<String> command = new ArrayList<>(List.of(python.toString(), SCRIPT, "--model", model.toString(), "--tokenizer",
                RealDataProbe.TOKENIZER, "--dtype", dtype));
        command.addAll(source);
        Path out = null;
        Path err = null;
        try {
            out = Files.createTempFile("bloomtune-peer", ".jsonl");
            err = Files.createTempFile("bloomtune-peer", ".log");
            ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile());
            // PyTorch's own switch for huge pages under its CPU tensors: the peer's fastest setting here, so the comparison is with its best.
            pb.environment().putIfAbsent("THP_MEM_ALLOC_ENABLE", "1");
            int exit = ChildProcess.run(pb, TIMEOUT_MINUTES, "the peer");
            if (exit != 0) throw new IllegalStateException("the peer exited " + exit + ": " + String.join(" ", command) + "\n" + tail(Files.readString(err)));
            return steps(Files.readAllLines(out));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            deleteQuietly(out);
            deleteQuietly(err);
        }
    }

    private static List<Step> steps(List<String> lines) {
        List<Step> steps = new ArrayList<>();
        for (String line : lines) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            steps.add(new Step(o.get("step").getAsInt(), o.get("seconds").getAsDouble(), o.get("tokens").getAsLong(),
                    o.get("padded_tokens").getAsLong(), o.get("loss").getAsDouble(), o.get("peak_rss_mib").getAsLong()));
        }
        return steps;
    }

    private static String tail(String log) {
        return log.length() <= 4000 ? log : log.substring(log.length() - 4000);
    }

    private static void deleteQuietly(Path file) {
        if (file == null) return;
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            System.err.println("could not delete " + file + ": " + e.getMessage());
        }
    }
}
