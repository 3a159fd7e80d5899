package org.bloomtune.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.dist.C10dCollective;
import org.bloomtune.dist.DistributedConfig;
import org.bloomtune.dist.Launcher;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.ModelShapes;
import org.bloomtune.tokenizer.Tokenizer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Data-parallel scaling on this machine, written to {@code benchmarks/SCALING.md}: the same
 * bloom-560m-shaped prompt-tuning run (global batch 4 × 256 tokens) as 1 rank × 2 threads and as
 * 2 ranks × 1 thread through the CLI's launcher, each step's time and time inside the all-reduce;
 * Gloo all-reduce times by size between two processes; the fp32 GEMM peak of the same run for
 * MFU; and from these a projection of the step on 2, 8 and 32 machines.
 */
public final class ScalingProbe {
    static final String SHAPE = "bloom-560m";
    static final int SEQ = 256;
    static final int GLOBAL_BATCH = 4;
    static final int STEPS = 5;
    static final int VIRTUAL_TOKENS = 10;
    /** Prompt gradient of 10 × 1024 floats plus the loss and token count, then 1 MiB and 16 MiB. */
    static final long[] FLOATS = {10 * 1024 + 2, 10 * 2048 + 2, 1 << 18, 1 << 22};
    static final int[] MACHINES = {2, 8, 32};
    static final double TEN_GBE_BYTES_PER_S = 1.25e9;

    private ScalingProbe() {}

    record Run(String name, double seconds, double commSeconds, double tokensPerSecond) {}

    record Collective(long bytes, double medianMs, double p90Ms) {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("allreduce")) {
            allReduceWorker(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            return;
        }
        Path out = Path.of(args.length > 0 ? args[0] : "benchmarks/SCALING.md");
        Path work = Path.of("target/bench-scaling");
        Files.createDirectories(work);
        double peak = gemmPeakGflops();
        Path model = Checkpoints.random(SHAPE);
        Path tokenizer = Path.of("models/bloom-tiny/tokenizer.json");
        Path data = uniformData(work.resolve("data.jsonl"), Tokenizer.load(tokenizer));
        List<String> common = List.of("train", "--model", model.toString(), "--tokenizer", tokenizer.toString(), "--data", data.toString(),
                "--max-length", Integer.toString(SEQ), "--max-steps", Integer.toString(STEPS), "--eval-split", "0", "--checkpoint-every",
                "1000", "--loss-on-prompt", "--virtual-tokens", Integer.toString(VIRTUAL_TOKENS), "--seed", "1", "--overwrite");
        Run one = train("1 rank × 2 threads", common, work.resolve("one"), List.of("--batch-size", Integer.toString(GLOBAL_BATCH)));
        Run two = train("2 ranks × 1 thread", common, work.resolve("two"), List.of("--batch-size", Integer.toString(GLOBAL_BATCH / 2),
                "--nproc-per-node", "2", "--threads", "1", "--master-port", "29561"));
        List<Collective> collectives = allReduceTimes(work);
        String md = report(peak, one, two, collectives);
        Files.writeString(out, md);
        System.out.println(md);
    }

    private static double gemmPeakGflops() throws RunnerException {
        RunResult r = new Runner(new OptionsBuilder().include("^" + GemmBenchmark.class.getName().replace(".", "\\.") + "\\.")
                .param("shape", Report.PEAK_SHAPE).param("dtype", "fp32").build()).run().iterator().next();
        long[] mkn = GemmBenchmark.parse(Report.PEAK_SHAPE);
        return 2.0 * mkn[0] * mkn[1] * mkn[2] / (r.getPrimaryResult().getScore() / 1e3) / 1e9;
    }

    /** Records long enough to fill every row to {@link #SEQ} tokens, so every step does the same work. */
    private static Path uniformData(Path file, Tokenizer tokenizer) throws IOException {
        String sentence = "今天天气很好，我们一起去公园散步，然后在湖边的小店喝茶，聊了很多关于学习和工作的事情。";
        String text = sentence.repeat(Math.max(1, 4 * SEQ / sentence.length()));
        if (tokenizer.encode(text).length < 2 * SEQ) throw new IllegalStateException("the probe's text is too short for " + SEQ + " tokens");
        StringBuilder jsonl = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            jsonl.append("{\"instruction\": \"").append(i).append(' ').append(text).append("\", \"input\": \"\", \"output\": \"好\"}\n");
        }
        Files.writeString(file, jsonl, StandardCharsets.UTF_8);
        return file;
    }

    /** A training run here takes a few minutes; one that has not ended after this is stopped. */
    private static final long TRAIN_TIMEOUT_MINUTES = 30;
    /** The all-reduce timings take seconds; a worker left waiting for its peer is killed after this. */
    private static final long ALL_REDUCE_MINUTES = 5;

    /** Runs {@code bloomtune train} in a JVM of its own; the mean over the steps after the first. */
    private static Run train(String name, List<String> common, Path output, List<String> extra) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(common);
        args.addAll(List.of("--output", output.toString()));
        args.addAll(extra);
        Path log = output.resolveSibling(output.getFileName() + ".log");
        int exit = ChildProcess.run(new ProcessBuilder(Launcher.thisJvm("org.bloomtune.cli.Main", args)).redirectErrorStream(true)
                .redirectOutput(log.toFile()), TRAIN_TIMEOUT_MINUTES, name);
        if (exit != 0) throw new IllegalStateException(name + " failed (exit " + exit + "): see " + log);
        List<String> lines = Files.readAllLines(output.resolve("metrics.jsonl"));
        double seconds = 0;
        double comm = 0;
        double tokensPerSecond = 0;
        int n = 0;
        for (String line : lines) {
            JsonObject r = JsonParser.parseString(line).getAsJsonObject();
            if (!r.has("step") || r.get("step").getAsInt() == 1 || !r.has("seconds")) continue;
            seconds += r.get("seconds").getAsDouble();
            comm += r.get("comm_seconds").getAsDouble();
            tokensPerSecond += r.get("tokens_per_s").getAsDouble();
            n++;
        }
        return new Run(name, seconds / n, comm / n, tokensPerSecond / n);
    }

    /** Two worker JVMs, one thread each, time all-reduces of each size; rank 0 prints them. */
    private static List<Collective> allReduceTimes(Path work) throws IOException {
        List<ProcessBuilder> workers = new ArrayList<>();
        Path timings = work.resolve("allreduce-0.out");
        for (int rank = 0; rank < 2; rank++) {
            ProcessBuilder pb = new ProcessBuilder(Launcher.thisJvm(ScalingProbe.class.getName(),
                    List.of("allreduce", Integer.toString(rank), "2", "29562")));
            pb.environment().put("OMP_NUM_THREADS", "1");
            pb.redirectError(work.resolve("allreduce-" + rank + ".err").toFile());
            pb.redirectOutput(rank == 0 ? ProcessBuilder.Redirect.to(timings.toFile()) : ProcessBuilder.Redirect.DISCARD);
            workers.add(pb);
        }
        for (int exit : ChildProcess.runTogether(workers, ALL_REDUCE_MINUTES, "the all-reduce workers")) {
            if (exit != 0) throw new IllegalStateException("an all-reduce worker failed: see " + work + "/allreduce-*.err");
        }
        String out = Files.readString(timings, StandardCharsets.UTF_8);
        List<Collective> result = new ArrayList<>();
        for (String line : out.strip().split("\n")) {
            String[] f = line.trim().split(" ");
            if (f.length == 4 && f[0].equals("allreduce")) {
                result.add(new Collective(Long.parseLong(f[1]), Double.parseDouble(f[2]), Double.parseDouble(f[3])));
            }
        }
        return result;
    }

    private static void allReduceWorker(int rank, int world, int port) {
        DistributedConfig config = new DistributedConfig(rank, world, rank, "127.0.0.1", port, Duration.ofSeconds(60));
        try (C10dCollective group = C10dCollective.join(config)) {
            for (long floats : FLOATS) {
                try (Tensor t = torch.ones(floats)) {
                    int reps = floats > 1 << 20 ? 20 : 100;
                    double[] ms = new double[reps];
                    for (int i = 0; i < 5; i++) group.allReduceSum(t, "warm-up");
                    for (int i = 0; i < reps; i++) {
                        group.barrier("timing");
                        long t0 = System.nanoTime();
                        group.allReduceSum(t, "timing");
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                    }
                    Arrays.sort(ms);
                    if (rank == 0) System.out.printf(Locale.ROOT, "allreduce %d %.3f %.3f%n", floats * 4, ms[reps / 2], ms[reps * 9 / 10]);
                }
            }
        }
    }

    private static String report(double peak, Run one, Run two, List<Collective> collectives) {
        BloomConfig c = ModelShapes.named(SHAPE);
        int perRow = SEQ + VIRTUAL_TOKENS;
        double flops = Report.stepFlops(c, GLOBAL_BATCH, perRow, (long) GLOBAL_BATCH * (SEQ - 1), true);
        StringBuilder md = new StringBuilder();
        md.append("# Data-parallel scaling (generated by `org.bloomtune.bench.ScalingProbe`; do not edit)\n\n");
        md.append("Regenerate (about 10 minutes on 2 cores): `JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 mvn -q -B -Pbench -DskipTests package && "
                + "/usr/lib/jvm/temurin-25-jdk-amd64/bin/java -cp target/bloomtune.jar org.bloomtune.bench.ScalingProbe`\n\n");
        md.append(Report.Machine.describe()).append('\n');
        md.append(String.format(Locale.ROOT, "GEMM peak (fp32, %s, same run): %.1f GFLOP/s.%n%n", Report.PEAK_SHAPE, peak));
        md.append(String.format(Locale.ROOT, "## One machine: %s shape, fp32, global batch %d × %d tokens + %d virtual, RECOMPUTE_BLOCKS, "
                + "all tokens labelled; mean of steps 2–%d%n%n", SHAPE, GLOBAL_BATCH, SEQ, VIRTUAL_TOKENS, STEPS));
        md.append("| layout | s/step | tokens/s | MFU (executed) | in the all-reduce s | share of the step |\n|---|---|---|---|---|---|\n");
        for (Run r : List.of(one, two)) {
            md.append(String.format(Locale.ROOT, "| %s | %.2f | %.1f | %.1f %% | %.3f | %.1f %% |%n", r.name(), r.seconds(), r.tokensPerSecond(),
                    100 * flops / r.seconds() / (peak * 1e9), r.commSeconds(), 100 * r.commSeconds() / r.seconds()));
        }
        md.append("\nTime in the all-reduce is measured on rank 0 from the call to its return: it includes waiting for the slower rank.\n");
        md.append("\n## Gloo all-reduce between two processes on 127.0.0.1 (1 thread each; median and p90 of 100 calls, 20 for 16 MiB)\n\n"
                + "| bytes | median ms | p90 ms |\n|---|---|---|\n");
        for (Collective k : collectives) {
            md.append(String.format(Locale.ROOT, "| %d | %.3f | %.3f |%n", k.bytes(), k.medianMs(), k.p90Ms()));
        }
        projection(md, one, c, collectives);
        return md.toString();
    }

    /**
     * A ring all-reduce on M machines takes 2(M−1) latency hops and moves 2(M−1)/M of the bytes:
     * the hop latency α and the bandwidth come from the two-process times above.
     */
    private static void projection(StringBuilder md, Run one, BloomConfig c, List<Collective> collectives) {
        Collective small = collectives.getFirst();
        Collective large = collectives.getLast();
        double bytesPerS = (large.bytes() - small.bytes()) / ((large.medianMs() - small.medianMs()) / 1e3);
        double alpha = Math.max(0, (small.medianMs() / 1e3 - small.bytes() / bytesPerS) / 2);
        long gradientBytes = 4L * (VIRTUAL_TOKENS * c.hiddenSize() + 2);
        md.append(String.format(Locale.ROOT, "%n## Projection to M machines (2 cores each), from the times above%n%n"
                + "Ring all-reduce: t(M) = 2(M−1)·α + 2(M−1)/M · bytes / bandwidth, with α = %.3f ms per hop and %.2f GB/s from the "
                + "two-process times (loopback), and again with 10 GbE's 1.25 GB/s. The gradient of a %d-token prompt at %s is %d bytes. "
                + "Compute per machine is the measured 1 rank × 2 threads step (%.2f s for %d rows); with a fixed global batch it is "
                + "scaled by rows per machine, which assumes a step's time is linear in its rows (optimistic for 1 row per machine).%n%n",
                alpha * 1e3, bytesPerS / 1e9, VIRTUAL_TOKENS, SHAPE, gradientBytes, one.seconds(), GLOBAL_BATCH));
        md.append("| machines | all-reduce ms (loopback α, BW) | all-reduce ms (α, 10 GbE) | 4 rows per machine: step s | tokens/s | "
                + "communication | global batch 32: step s | tokens/s | communication |\n|---|---|---|---|---|---|---|---|---|\n");
        double perRow = one.seconds() / GLOBAL_BATCH;
        for (int m : MACHINES) {
            double comm = 2 * (m - 1) * alpha + 2.0 * (m - 1) / m * gradientBytes / bytesPerS;
            double comm10 = 2 * (m - 1) * alpha + 2.0 * (m - 1) / m * gradientBytes / TEN_GBE_BYTES_PER_S;
            double weak = one.seconds() + comm;
            double strong = perRow * Math.max(1.0, 32.0 / m) + comm;
            md.append(String.format(Locale.ROOT, "| %d | %.2f | %.2f | %.2f | %.0f | %.3f %% | %.2f | %.0f | %.3f %% |%n", m, comm * 1e3, comm10 * 1e3,
                    weak, m * GLOBAL_BATCH * SEQ / weak, 100 * comm / weak, strong, Math.max(32, m) * SEQ / strong, 100 * comm / strong));
        }
        md.append("""

                The p90 all-reduce times on this machine are several times the medians: with every core busy, a rank is often
                descheduled. In a training run the time inside the all-reduce is dominated by waiting for the slower rank (the
                first table), not by the transfer.
                """);
    }
}
