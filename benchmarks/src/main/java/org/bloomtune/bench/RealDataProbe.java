package org.bloomtune.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.dist.Launcher;
import org.bloomtune.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The seed recipe on real rows: {@code train} on the shipped Alpaca-zh samples (their own lengths,
 * the seed template, max length 256, batch 4, response-only loss, 10 virtual tokens) at a
 * benchmark shape, each run a fresh JVM running the CLI as a user runs it, every figure read from
 * the run's own {@code metrics.jsonl}. Runs differ only in how a batch's records become rows: padded
 * to the batch's longest as the peer's {@code DataCollatorForSeq2Seq} does ({@code --padded-batches}),
 * the default padding-free rows, {@code --group-by-length}, {@code --packing}.
 * {@code RealDataProbe [SHAPE [STEPS [DTYPE:BATCHING ...]]]}; defaults bloom-560m, 6, every batching in
 * fp32 and bf16.
 */
public final class RealDataProbe {
    /** The first step fills the caches and is left out of the rates. */
    private static final int WARM_UP_STEPS = 1;
    private static final int BATCH = 4;
    /** One row's run takes 1–2 minutes at bloom-560m shape here. */
    private static final long RUN_TIMEOUT_MINUTES = 30;
    static final String DATA = "models/demo-data/alpaca_zh_demo_first300.json";
    static final String TOKENIZER = "models/bloom-tiny/tokenizer.json";

    /** The shape the modeled peer's figures were measured at. */
    private static final String MODELED_SHAPE = "bloom-560m";

    /** The runs {@link Report} and a bare invocation measure. */
    static final List<String> DEFAULT_RUNS = List.of("fp32:padded", "fp32:default", "fp32:group-by-length", "fp32:packing",
            "bf16:padded", "bf16:default", "bf16:group-by-length", "bf16:packing");

    public static void main(String[] args) {
        String shape = args.length > 0 ? args[0] : "bloom-560m";
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 6;
        System.out.print(table(shape, steps, args.length > 2 ? List.of(args).subList(2, args.length) : DEFAULT_RUNS));
    }

    /** One run's steps after the warm-up, summed. */
    record Measured(String dtype, String batching, double seconds, double firstStepSeconds, long firstStepTokens,
                    long[] stepTokens, long[] stepPositions, double steal, long peakRssMib) {
        /** Real tokens over the timed steps. */
        long realTokens() { return Arrays.stream(stepTokens).sum(); }

        double realTokensPerSecond() { return realTokens() / seconds; }

        /** Positions of the rows computed over the timed steps. */
        long positions() { return Arrays.stream(stepPositions).sum(); }

        /** With the warm-up step counted too. */
        double allStepsRealTokensPerSecond() { return (realTokens() + firstStepTokens) / (seconds + firstStepSeconds); }
    }

    /** The markdown table for {@code runs} ("DTYPE:BATCHING"), each row also printed to stderr as it is measured. */
    static String table(String shape, int steps, List<String> runs) {
        if (steps <= WARM_UP_STEPS) throw new IllegalArgumentException("steps must be more than the " + WARM_UP_STEPS + " warm-up step, got " + steps);
        Path model = Checkpoints.random(shape);
        List<Measured> measured = new ArrayList<>();
        for (String run : runs) {
            Measured m = run(model, run.substring(0, run.indexOf(':')), run.substring(run.indexOf(':') + 1), steps);
            System.err.printf(Locale.ROOT, "%s %s: %.1f real tokens/s%n", m.dtype(), m.batching(), m.realTokensPerSecond());
            measured.add(m);
        }
        Optional<Path> python = PeerRun.python();
        Map<String, Peer> peer = new HashMap<>();
        for (Measured padded : measured) {
            if (!padded.batching().equals("padded")) continue;
            if (python.isPresent()) peer.put(padded.dtype(), peerMeasured(python.get(), model, padded, steps));
            else if (shape.equals(MODELED_SHAPE)) peer.put(padded.dtype(), new Peer(peerModeled(padded), -1));
        }
        StringBuilder md = new StringBuilder(String.format(Locale.ROOT, "%s, `%s`, steps %d–%d of one run each (step 1 fills the caches)%n%n"
                + "| dtype | batches | real tokens | positions in rows | real share | s | real tokens/s | step 1 s | real tokens/s, step 1 counted "
                + "| steal %% | process peak MiB | peer %s real tokens/s | × peer | peer process peak MiB |%n"
                + "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|%n",
                shape, DATA, WARM_UP_STEPS + 1, steps, python.isPresent() ? "measured" : "modeled"));
        for (Measured m : measured) md.append(row(m, peer));
        md.append(String.format(Locale.ROOT, "%nProcess peak: BloomTune's resident high-water mark while training (`peak_rss_mib` in "
                + "`metrics.jsonl`, the loaded model included, the load's own transient not); the peer's `ru_maxrss` (load included).%n"));
        return md.toString();
    }

    /** The peer's real tokens/s on the padded run's batches, and its process peak (-1 when modeled). */
    private record Peer(double realTokensPerSecond, long peakRssMib) {}

    /**
     * One run's row; the peer's columns where the padded run of the same dtype has its batches (the
     * defaults' records per step are the padded run's).
     */
    private static String row(Measured m, Map<String, Peer> peer) {
        boolean sameBatches = peer.containsKey(m.dtype()) && (m.batching().equals("padded") || m.batching().equals("default"));
        Peer p = sameBatches ? peer.get(m.dtype()) : null;
        return String.format(Locale.ROOT, "| %s | %s | %d | %d | %.0f %% | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %s | %s | %s |%n", m.dtype(),
                m.batching(), m.realTokens(), m.positions(), 100.0 * m.realTokens() / m.positions(), m.seconds(), m.realTokensPerSecond(),
                m.firstStepSeconds(), m.allStepsRealTokensPerSecond(), m.steal(), m.peakRssMib(),
                p != null ? String.format(Locale.ROOT, "%.1f", p.realTokensPerSecond()) : "-",
                p != null ? String.format(Locale.ROOT, "**%.2f×**", m.realTokensPerSecond() / p.realTokensPerSecond()) : "-",
                p != null && p.peakRssMib() >= 0 ? Long.toString(p.peakRssMib()) : "-");
    }

    /**
     * The peer's real tokens/s on the padded run's batches, its steps after the warm-up, and its process peak: run on this
     * machine, each step checked to hold the same real tokens and padded positions as BloomTune's.
     */
    private static Peer peerMeasured(Path python, Path model, Measured padded, int steps) {
        List<PeerRun.Step> ran = PeerRun.realData(python, model, padded.dtype(), steps);
        System.err.printf(Locale.ROOT, "peer %s: %s%n", padded.dtype(), ran);
        if (ran.size() != steps) throw new IllegalStateException("the peer ran " + ran.size() + " steps, not " + steps);
        List<PeerRun.Step> timed = ran.subList(WARM_UP_STEPS, steps);
        for (int i = 0; i < timed.size(); i++) {
            PeerRun.Step s = timed.get(i);
            if (s.tokens() != padded.stepTokens()[i] || s.paddedTokens() != padded.stepPositions()[i]) {
                throw new IllegalStateException(String.format(Locale.ROOT, "step %d: the peer had %d real tokens in %d positions, BloomTune %d in %d",
                        s.step(), s.tokens(), s.paddedTokens(), padded.stepTokens()[i], padded.stepPositions()[i]));
            }
        }
        return new Peer(timed.stream().mapToLong(PeerRun.Step::tokens).sum() / timed.stream().mapToDouble(PeerRun.Step::seconds).sum(),
                ran.stream().mapToLong(PeerRun.Step::peakRssMib).max().orElseThrow());
    }

    /** The peer modeled over the padded run's steps: its seconds per position times each row padded to the batch's longest, virtual tokens ahead. */
    private static double peerModeled(Measured padded) {
        double positions = 0;
        for (long p : padded.stepPositions()) positions += p + (double) BATCH * StepFixture.VIRTUAL_TOKENS;
        return padded.realTokens() / (positions * PeerRun.modeledSecondsPerPosition(padded.dtype()));
    }

    private static Measured run(Path model, String dtype, String batching, int steps) {
        Path dir = null;
        try {
            dir = Files.createTempDirectory("bloomtune-real-data");
            List<String> args = new ArrayList<>(List.of("train", "--model", model.toString(), "--tokenizer", TOKENIZER, "--data", DATA,
                    "--output", dir.resolve("run").toString(), "--max-steps", String.valueOf(steps), "--eval-split", "0", "--dtype", dtype,
                    "--batch-size", String.valueOf(BATCH), "--virtual-tokens", String.valueOf(StepFixture.VIRTUAL_TOKENS)));
            switch (batching) {
                case "padded" -> args.add("--padded-batches");
                case "group-by-length" -> args.add("--group-by-length");
                case "packing" -> args.add("--packing");
                case "default" -> { }
                default -> throw new IllegalArgumentException("batching must be padded, default, group-by-length or packing, got " + batching);
            }
            Path log = dir.resolve("train.log");
            long[] steal = CpuSteal.sample();
            int exit = ChildProcess.run(new ProcessBuilder(Launcher.thisJvm("org.bloomtune.cli.Main", args)).redirectErrorStream(true)
                    .redirectOutput(log.toFile()), RUN_TIMEOUT_MINUTES, "train (" + dtype + ", " + batching + ")");
            double stolen = CpuSteal.percent(steal, CpuSteal.sample());
            if (exit != 0) throw new IllegalStateException("train (" + dtype + ", " + batching + ") exited " + exit + ":\n" + Files.readString(log));
            return measured(dtype, batching, dir.resolve("run").resolve("metrics.jsonl"), stolen);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (dir != null) deleteQuietly(dir);
        }
    }

    private static Measured measured(String dtype, String batching, Path metrics, double steal) throws IOException {
        List<JsonObject> stepRecords = new ArrayList<>();
        for (String line : Files.readAllLines(metrics)) {
            JsonObject r = JsonParser.parseString(line).getAsJsonObject();
            if (r.has("seconds")) stepRecords.add(r);
        }
        List<JsonObject> timed = stepRecords.subList(WARM_UP_STEPS, stepRecords.size());
        double seconds = 0;
        long[] stepTokens = new long[timed.size()];
        long[] stepPositions = new long[timed.size()];
        for (int i = 0; i < timed.size(); i++) {
            JsonObject r = timed.get(i);
            seconds += r.get("seconds").getAsDouble();
            stepTokens[i] = r.get("tokens").getAsLong();
            stepPositions[i] = r.get("padded_tokens").getAsLong();
        }
        JsonObject first = stepRecords.getFirst();
        long peak = stepRecords.stream().mapToLong(r -> r.get("peak_rss_mib").getAsLong()).max().orElseThrow();
        return new Measured(dtype, batching, seconds, first.get("seconds").getAsDouble(), first.get("tokens").getAsLong(), stepTokens, stepPositions,
                steal, peak);
    }

    private static void deleteQuietly(Path dir) {
        try {
            AtomicFiles.deleteTree(dir);
        } catch (IOException e) {
            System.err.println("could not delete " + dir + ": " + e.getMessage());
        }
    }
}
