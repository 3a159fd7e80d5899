package org.bloomtune.dist;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.ChildJvm;
import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.tensor.Tensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data-parallel training over c10d (Gloo) on 127.0.0.1: two ranks give the losses and the adapter
 * of one process on the same global batch, also across a kill -9 of one rank and a resume; a dead
 * rank stops the other within the timeout, named; bad distributed settings are one-line errors.
 */
class DistributedTrainingTest {
    static final String DATA = "models/demo-data/alpaca_zh_demo_first300.json";

    @TempDir
    Path dir;

    @Test
    void twoRanksEqualOneProcessOnTheSameGlobalBatch() throws Exception {
        List<String> common = List.of("--model", "models/bloom-tiny", "--data", DATA, "--max-steps", "5", "--max-length", "64",
                "--checkpoint-every", "2", "--eval-split", "0.03", "--lr", "0.03", "--seed", "3", "--grad-accumulation", "2");
        assertEquals(0, run(train(common, dir.resolve("one"), "--batch-size", "4")).exit());
        Run two = run(train(common, dir.resolve("two"), "--batch-size", "2", "--nproc-per-node", "2", "--master-port", port()));
        assertEquals(0, two.exit(), two.log());
        assertSameRun(dir.resolve("one"), dir.resolve("two"), 5);
        assertFalse(Files.exists(dir.resolve("two/checkpoint-4/.partial")));
    }

    @Test
    void classificationTooAndEvaluationIsShardedAndReduced() throws Exception {
        Path tsv = dir.resolve("reviews.tsv");
        Files.write(tsv, Files.readAllLines(Reference.chnSentiCorpTrain()).subList(0, 48));
        List<String> common = List.of("--task", "classify", "--verbalizer", "models/verbalizers/sentiment-zh.json", "--model", "models/bloom-tiny",
                "--data", tsv.toString(), "--max-steps", "3", "--max-length", "64", "--eval-split", "0.25", "--lr", "0.05", "--eval-every", "2");
        assertEquals(0, run(train(common, dir.resolve("one"), "--batch-size", "8")).exit());
        Run two = run(train(common, dir.resolve("two"), "--batch-size", "4", "--nproc-per-node", "2", "--master-port", port()));
        assertEquals(0, two.exit(), two.log());
        assertSameRun(dir.resolve("one"), dir.resolve("two"), 3);
        assertTrue(Files.exists(dir.resolve("two/adapter/verbalizer.json")));
    }

    @Test
    void twoMachinesJoinWithTorchrunsFlags() throws Exception {
        List<String> common = List.of("--model", "models/bloom-tiny", "--data", DATA, "--max-steps", "3", "--max-length", "64",
                "--eval-split", "0", "--seed", "7");
        assertEquals(0, run(train(common, dir.resolve("one"), "--batch-size", "4")).exit());
        String port = port();
        List<String> machine = List.of("--batch-size", "2", "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", port);
        Process node0 = start(train(common, dir.resolve("node0"), concat(machine, "--node-rank", "0")), Map.of(), dir.resolve("node0.log"));
        Process node1 = start(train(common, dir.resolve("node1"), concat(machine, "--node-rank", "1")), Map.of(), dir.resolve("node1.log"));
        for (Process p : List.of(node0, node1)) {
            if (!p.waitFor(300, TimeUnit.SECONDS)) p.destroyForcibly();
        }
        assertEquals(0, node0.exitValue(), Files.readString(dir.resolve("node0.log")));
        assertEquals(0, node1.exitValue(), Files.readString(dir.resolve("node1.log")));
        assertSameRun(dir.resolve("one"), dir.resolve("node0"), 3);
        assertFalse(Files.exists(dir.resolve("node1/adapter")), "only rank 0 writes");
    }

    @Test
    void aKilledRankStopsTheOtherNamingItAndTheRunResumesExactly() throws Exception {
        List<String> common = List.of("--model", "models/bloom-tiny", "--data", DATA, "--max-steps", "40", "--max-length", "128",
                "--checkpoint-every", "1", "--eval-split", "0", "--seed", "5", "--dist-timeout", "30");
        assertEquals(0, run(train(common, dir.resolve("straight"), "--batch-size", "4")).exit());
        String port = port();
        Path out = dir.resolve("killed");
        Process launcher = start(train(common, out, "--batch-size", "2", "--nproc-per-node", "2", "--master-port", port));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!Files.exists(out.resolve("checkpoint-3/trainer_state.json")) && launcher.isAlive() && System.nanoTime() < deadline) Thread.sleep(2);
        List<ProcessHandle> ranks = launcher.children().sorted(Comparator.comparing(p -> p.info().startInstant().orElseThrow())).toList();
        assertEquals(2, ranks.size(), "two workers");
        assertTrue(ranks.get(1).destroyForcibly(), "SIGKILL rank 1");
        long killedAt = System.nanoTime();
        assertTrue(launcher.waitFor(60, TimeUnit.SECONDS), "the survivor stops within the timeout");
        String log = Files.readString(dir.resolve("launcher.log"));
        assertTrue(launcher.exitValue() != 0, log);
        assertTrue(log.contains("rank 1 was killed by signal 9"), log);
        assertTrue(log.contains("[rank 0] bloomtune train: rank 0: the all-reduce of") && log.contains("rank 1 (silent for"), log);
        System.out.printf("the survivor stopped %.1f s after the kill%n", (System.nanoTime() - killedAt) / 1e9);
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of(), s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList(), "nothing half-written");
        }
        Run resumed = run(train(common, out, "--batch-size", "2", "--nproc-per-node", "2", "--master-port", port(), "--resume"));
        assertEquals(0, resumed.exit(), resumed.log());
        assertSameRun(dir.resolve("straight"), out, 40);
    }

    @Test
    void sigtermToTheLauncherStopsEveryRankAfterTheSameStepAndTheRunResumesExactly() throws Exception {
        List<String> common = stoppableRun(40);
        assertEquals(0, run(train(common, dir.resolve("straight"), "--batch-size", "4")).exit());
        Path out = dir.resolve("stopped");
        Process launcher = launchUntilStep(common, out, 3);
        List<ProcessHandle> ranks = launcher.children().toList();
        launcher.destroy();                                                       // SIGTERM, to the launcher alone
        String log = stoppedLog(launcher);
        for (ProcessHandle rank : ranks) assertFalse(rank.isAlive(), "rank " + rank.pid() + " outlived its launcher");
        assertTrue(log.contains("asking the ranks to stop after their current step"), log);
        int reached = assertAgreedCheckpoint(out, 40, log);
        assertTrue(reached >= 3 && reached < 40, "steps before the stop: " + reached + "\n" + log);
        Run resumed = run(train(common, out, "--batch-size", "2", "--nproc-per-node", "2", "--master-port", port(), "--resume"));
        assertEquals(0, resumed.exit(), resumed.log());
        assertSameRun(dir.resolve("straight"), out, 40);
    }

    @Test
    void sigtermToOneRankStopsBothAfterTheSameStepAndTheLauncherSaysSo() throws Exception {
        Path out = dir.resolve("stopped");
        Process launcher = launchUntilStep(stoppableRun(400), out, 3);
        List<ProcessHandle> ranks = launcher.children().sorted(Comparator.comparing(p -> p.info().startInstant().orElseThrow())).toList();
        assertTrue(ranks.get(1).destroy(), "SIGTERM to rank 1 alone");
        String log = stoppedLog(launcher);
        assertTrue(log.contains("[rank 1] bloomtune: SIGTERM: stopping"), log);
        assertTrue(log.contains("stopped on request (exit 143); the other ranks stop after the same step"), log);
        assertFalse(log.contains("was killed") || log.contains("did not end on its own"), log);
        assertAgreedCheckpoint(out, 400, log);
    }

    /** Two-rank runs of {@code steps} whose only checkpoint is the one a stop writes. */
    private static List<String> stoppableRun(int steps) {
        return List.of("--model", "models/bloom-tiny", "--data", DATA, "--max-steps", Integer.toString(steps), "--max-length", "128",
                "--checkpoint-every", "1000", "--eval-split", "0", "--seed", "5");
    }

    /** The launcher with two ranks, once {@code steps} steps are logged. */
    private Process launchUntilStep(List<String> common, Path out, int steps) throws Exception {
        Process launcher = start(train(common, out, "--batch-size", "2", "--nproc-per-node", "2", "--master-port", port()));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (metricsLines(out) < steps && launcher.isAlive() && System.nanoTime() < deadline) Thread.sleep(2);
        assertEquals(2, launcher.children().count(), "two workers");
        return launcher;
    }

    /** The launcher's log once it ended, within a minute, as a stopped run (143). */
    private String stoppedLog(Process launcher) throws Exception {
        boolean ended = launcher.waitFor(60, TimeUnit.SECONDS);
        if (!ended) launcher.descendants().forEach(ProcessHandle::destroyForcibly);
        String log = Files.readString(dir.resolve("launcher.log"));
        assertTrue(ended, "the launcher did not end within 60 s of the signal:\n" + log);
        assertEquals(143, launcher.exitValue(), log);
        return log;
    }

    /** Rank 0 names the step the ranks stopped after, and its checkpoint is the only one, whole. Returns the step. */
    private static int assertAgreedCheckpoint(Path out, int total, String log) throws IOException {
        int reached = metricsLines(out);
        assertTrue(log.contains("stopped on request after step " + reached + " of " + total + "; checkpoint "), log);
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of("checkpoint-" + reached), s.map(p -> p.getFileName().toString()).filter(n -> !n.endsWith(".jsonl") && !n.endsWith(".png"))
                    .sorted().toList(), "the agreed step checkpointed, nothing half-written");
        }
        return reached;
    }

    private static int metricsLines(Path run) throws IOException {
        Path m = run.resolve("metrics.jsonl");
        return Files.exists(m) ? Files.readAllLines(m).size() : 0;
    }

    @Test
    void badDistributedSettingsAreOneLineErrors() throws Exception {
        List<String> common = List.of("--model", "models/bloom-tiny", "--data", DATA, "--max-steps", "1", "--max-length", "32");
        assertBad(run(train(common, dir.resolve("a"), "--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2")), "--node-rank 2 is outside [0, 2)");
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Run r = run(train(common, dir.resolve("b"), "--nproc-per-node", "2", "--master-port", Integer.toString(taken.getLocalPort()),
                    "--dist-timeout", "10"));
            assertEquals(2, r.exit(), r.log());
            assertTrue(r.log().contains("port " + taken.getLocalPort() + " on 127.0.0.1 is in use: choose another --master-port"), r.log());
        }
        Run rank = run(train(common, dir.resolve("c")), Map.of("RANK", "3", "WORLD_SIZE", "2"));
        assertBad(rank, "rank 3 is outside [0, 2)");
        String port = port();
        List<String> machine = List.of("--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", port, "--dist-timeout", "60");
        Process node0 = start(train(common, dir.resolve("e0"), concat(machine, "--node-rank", "0", "--lr", "0.01")), Map.of(), dir.resolve("e0.log"));
        Process node1 = start(train(common, dir.resolve("e1"), concat(machine, "--node-rank", "1", "--lr", "0.02")), Map.of(), dir.resolve("e1.log"));
        for (Process p : List.of(node0, node1)) assertTrue(p.waitFor(120, TimeUnit.SECONDS), "stops by itself");
        for (String node : List.of("e0", "e1")) {
            assertBad(new Run(node.equals("e0") ? node0.exitValue() : node1.exitValue(), Files.readString(dir.resolve(node + ".log"))),
                    "the ranks were started with different settings or data (lr differ from rank 0's)");
        }
        assertFalse(Files.exists(dir.resolve("e0/checkpoint-1")), "nothing trained");
        Run unreachable = run(train(common, dir.resolve("d"), "--dist-timeout", "3"),
                Map.of("RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", port()));
        assertBad(unreachable, "rank 1 cannot reach the master at 127.0.0.1:");
    }

    // ---- helpers -------------------------------------------------------------------------------------

    record Run(int exit, String log) {}

    private static List<String> train(List<String> common, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--output", out.toString()));
        args.addAll(common);
        args.addAll(List.of(more));
        return args;
    }

    private Run run(List<String> args) throws Exception { return run(args, Map.of()); }

    private Run run(List<String> args, Map<String, String> env) throws Exception {
        Process p = start(args, env);
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            throw new AssertionError("did not finish: " + Files.readString(dir.resolve("launcher.log")));
        }
        return new Run(p.exitValue(), Files.readString(dir.resolve("launcher.log")));
    }

    private Process start(List<String> args) throws IOException { return start(args, Map.of()); }

    private Process start(List<String> args, Map<String, String> env) throws IOException {
        return start(args, env, dir.resolve("launcher.log"));
    }

    /** The CLI in a JVM of its own (so its workers are its children), torchrun's variables cleared. */
    private static Process start(List<String> args, Map<String, String> env, Path log) throws IOException {
        List<String> command = ChildJvm.cli();
        command.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().keySet().removeAll(List.of("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"));
        pb.environment().putAll(env);
        return pb.start();
    }

    private static String[] concat(List<String> a, String... b) {
        List<String> all = new ArrayList<>(a);
        all.addAll(List.of(b));
        return all.toArray(String[]::new);
    }

    private static String port() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return Integer.toString(s.getLocalPort());
        }
    }

    /** Per-step losses within 1e-5 and adapters within 1e-5 of their largest entry. */
    private static void assertSameRun(Path a, Path b, int steps) throws IOException {
        List<JsonObject> x = metrics(a);
        List<JsonObject> y = metrics(b);
        assertEquals(x.size(), y.size(), "metrics records");
        int compared = 0;
        for (int i = 0; i < x.size(); i++) {
            for (String key : List.of("loss", "eval_loss", "eval_accuracy")) {
                if (!x.get(i).has(key)) continue;
                assertEquals(x.get(i).get("step").getAsInt(), y.get(i).get("step").getAsInt());
                assertEquals(x.get(i).get(key).getAsDouble(), y.get(i).get(key).getAsDouble(), 1e-5, key + " at step " + x.get(i).get("step"));
                if (key.equals("loss")) compared++;
            }
        }
        assertEquals(steps, compared);
        try (SafetensorsFile p = SafetensorsFile.open(a.resolve("adapter/adapter_model.safetensors"));
             SafetensorsFile q = SafetensorsFile.open(b.resolve("adapter/adapter_model.safetensors"))) {
            double rel = Reference.relativeMaxDiff(Tensors.toFloats(p.tensor("prompt_embeddings")), Tensors.toFloats(q.tensor("prompt_embeddings")));
            assertTrue(rel <= 1e-5, "adapters differ by " + rel);
        }
    }

    private static List<JsonObject> metrics(Path run) throws IOException {
        return Files.readAllLines(run.resolve("metrics.jsonl")).stream().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
    }

    private static void assertBad(Run r, String message) {
        assertEquals(2, r.exit(), r.log());
        assertTrue(r.log().contains(message), "expected '" + message + "' in: " + r.log());
        assertFalse(r.log().contains("\tat "), r.log());
    }
}
