package org.bloomtune.train;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.ChildJvm;
import org.bloomtune.Reference;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.cli.Main;
import org.bloomtune.data.Example;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.ProcessMemory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainerTest {
    @TempDir
    Path dir;

    @Test
    void promptTuningLowersTheLossAndWritesItsOutputs() throws IOException {
        Path model = Reference.reference("hf/a/model");
        // Two short sequences to fit: a soft prompt alone can lower their loss a long way.
        List<Example> data = List.of(new Example(new long[]{49, 584, 613, 796, 223, 10, 11}, new long[]{49, 584, 613, 796, 223, 10, 11}),
                new Example(new long[]{7, 8, 9, 10, 11}, new long[]{7, 8, 9, 10, 11}));
        TrainConfig config = TrainConfig.builder().output(dir.resolve("run")).epochs(40).batchSize(2).lr(0.1)
                .schedule(LrSchedule.Decay.CONSTANT).checkpointEvery(10).evalEvery(20).seed(1).build();
        try (BloomModel m = BloomModel.load(model); SoftPrompt prompt = SoftPrompt.random(5, 64, 1)) {
            AdapterConfig ac = AdapterConfig.forModel(m.config(), 5, PromptInit.RANDOM, null, "hf/a");
            Trainer.Summary s = new Trainer<>(new CausalLmTask(m), config, ac, TrainingListener.SILENT).train(prompt, data, data, RunMode.NEW);
            List<JsonObject> metrics = new MetricsLog(config.output()).read();
            double first = metrics.stream().filter(r -> r.has("loss")).findFirst().orElseThrow().get("loss").getAsDouble();
            System.out.printf("memorizing 2 sequences: loss %.3f -> %.3f after %d steps (eval %.3f)%n", first, s.lastLoss(), s.steps(), s.evalLoss());
            assertEquals(40, s.steps());
            assertTrue(s.lastLoss() < 0.5 * first, "loss " + first + " -> " + s.lastLoss());
            assertEquals(40 + 4, metrics.size(), "one record per step and per evaluation (steps 0, 20, 40, end)");
            byte[] png = Files.readAllBytes(config.output().resolve("loss.png"));
            assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(png, 4));
            try (PeftAdapter.Loaded a = PeftAdapter.load(s.adapter(), m.config())) {
                assertArrayEquals(org.bloomtune.tensor.Tensors.toFloats(prompt.weight()), org.bloomtune.tensor.Tensors.toFloats(a.prompt().weight()));
            }
            assertEquals(List.of("checkpoint-30", "checkpoint-40"), Files.list(config.output())
                    .map(p -> p.getFileName().toString()).filter(n -> n.startsWith("checkpoint")).sorted().toList());
        }
    }

    @Test
    void resumeAfterKillNineContinuesExactlyAsAnUninterruptedRun() throws Exception {
        List<String> common = demoRun("--epochs", "3", "--checkpoint-every", "1", "--seed", "5");
        Path straight = uninterrupted(common);
        // The same run in a child JVM, killed with SIGKILL once checkpoint 5 is on disk.
        Path killed = dir.resolve("killed");
        Process child = startCli(common, killed);
        waitUntil(child, () -> Files.exists(killed.resolve("checkpoint-5/trainer_state.json")));
        child.destroyForcibly().waitFor();
        assertEquals(137, child.exitValue(), "killed with SIGKILL");
        int reached = Checkpoints.latest(killed).map(Checkpoints::step).orElseThrow();
        assertTrue(reached >= 5 && reached < 36, "checkpoint reached: " + reached);
        resumeAndCompare(common, straight, killed, reached);
    }

    @Test
    void aStopRequestEndsTheRunAfterTheCurrentStepWithItsCheckpointAndNoAdapter() {
        Path model = Reference.reference("hf/a/model");
        List<Example> data = List.of(new Example(new long[]{49, 584, 613, 796, 223, 10, 11}, new long[]{49, 584, 613, 796, 223, 10, 11}),
                new Example(new long[]{7, 8, 9, 10, 11}, new long[]{7, 8, 9, 10, 11}));
        TrainConfig config = TrainConfig.builder().output(dir.resolve("run")).epochs(40).batchSize(1).lr(0.1)
                .checkpointEvery(10).evalEvery(5).seed(1).build();
        TrainingStop stop = new TrainingStop();
        TrainingListener stopAtSeven = new TrainingListener() {      // as another thread would, in the middle of step 7's work
            @Override public void onStep(int step, int total, int firstStep, double loss, double tokensPerSecond) { if (step == 7) stop.request(); }
        };
        try (BloomModel m = BloomModel.load(model); SoftPrompt prompt = SoftPrompt.random(5, 64, 1)) {
            AdapterConfig ac = AdapterConfig.forModel(m.config(), 5, PromptInit.RANDOM, null, "hf/a");
            Trainer.Summary s = new Trainer<>(new CausalLmTask(m), config, ac, stopAtSeven).stopOn(stop).train(prompt, data, data, RunMode.NEW);
            assertTrue(s.stopped());
            assertEquals(7, s.steps());
            assertEquals(config.output().resolve("checkpoint-7/adapter"), s.adapter());
            assertEquals(List.of("checkpoint-7"), Files.list(config.output()).map(p -> p.getFileName().toString())
                    .filter(n -> n.startsWith("checkpoint")).sorted().toList());
            assertFalse(Files.exists(config.output().resolve("adapter")));
            // Evaluations at 0 and 5 only: none at the stop, none at the end.
            assertEquals(7 + 2, new MetricsLog(config.output()).read().size());
            try (PeftAdapter.Loaded a = PeftAdapter.load(s.adapter(), m.config())) {
                assertArrayEquals(org.bloomtune.tensor.Tensors.toFloats(prompt.weight()), org.bloomtune.tensor.Tensors.toFloats(a.prompt().weight()));
            }
            // A stop already requested: nothing is run or written.
            Trainer.Summary none = new Trainer<>(new CausalLmTask(m), config.withOutput(dir.resolve("none")), ac, TrainingListener.SILENT).stopOn(stop)
                    .train(prompt, data, List.of(), RunMode.NEW);
            assertTrue(none.stopped());
            assertEquals(0, none.steps());
            assertEquals(null, none.adapter());
            assertTrue(Checkpoints.latest(dir.resolve("none")).isEmpty());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void sigtermStopsTheCliAfterItsStepWithACheckpointThatResumesExactly() throws Exception {
        // Checkpoints far apart: the only one the stopped run has is the one the stop wrote.
        List<String> common = demoRun("--epochs", "20", "--checkpoint-every", "1000", "--seed", "7");
        Path straight = uninterrupted(common);
        // The same run in a child JVM, sent SIGTERM (as a terminal's Ctrl-C or a process manager would) after some steps.
        // Before the CLI handled signals, the JVM's own exit waited forever in OpenBLAS's exit handler.
        Path stopped = dir.resolve("stopped");
        Path metrics = stopped.resolve("metrics.jsonl");
        Process child = startCli(common, stopped);
        waitUntil(child, () -> Files.exists(metrics) && Files.readAllLines(metrics).size() >= 5);
        child.destroy();                                                          // SIGTERM
        boolean ended = child.waitFor(60, TimeUnit.SECONDS);
        if (!ended) child.destroyForcibly().waitFor();
        String out = Files.readString(dir.resolve("child.log"));
        assertTrue(ended, "the child did not end within 60 s of SIGTERM:\n" + out);
        assertEquals(143, child.exitValue(), out);
        int reached = new MetricsLog(stopped).read().size();
        assertTrue(out.contains("stopped on request after step " + reached + " of 240; checkpoint "), out);
        assertTrue(out.contains("stopped: continue this run with --resume"), out);
        assertEquals(reached, Checkpoints.latest(stopped).map(Checkpoints::step).orElseThrow(), "the stop checkpoints the step it reached");
        assertFalse(Files.exists(stopped.resolve("adapter")), "no final adapter for a run that did not finish");
        assertTrue(reached >= 5 && reached < 240, "steps before the stop: " + reached);
        resumeAndCompare(common, straight, stopped, reached);
    }

    /** {@code train} on 24 demo rows of the default model, batch 2, with {@code more} flags. */
    private List<String> demoRun(String... more) throws IOException {
        Path data = dir.resolve("data.json");
        Files.writeString(data, demoSample(24));
        List<String> common = new ArrayList<>(List.of("train", "--model", "models/bloom-tiny", "--data", data.toString(), "--eval-split", "0",
                "--batch-size", "2", "--max-length", "96"));
        common.addAll(List.of(more));
        return common;
    }

    /** The run without interruption, in this JVM: the truth an interrupted and resumed run is compared with. */
    private Path uninterrupted(List<String> common) {
        Path straight = dir.resolve("straight");
        assertEquals(0, quiet(() -> Main.run(args(common, "--output", straight.toString()).toArray(String[]::new))));
        return straight;
    }

    /** {@code train} in a child JVM into {@code output}, its output in child.log. */
    private Process startCli(List<String> common, Path output) throws IOException {
        List<String> command = ChildJvm.cli();
        command.addAll(args(common, "--output", output.toString()));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
    }

    /** Waits up to two minutes for {@code ready}, and fails if the child ended first. */
    private void waitUntil(Process child, java.util.concurrent.Callable<Boolean> ready) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!ready.call() && child.isAlive() && System.nanoTime() < deadline) Thread.sleep(2);
        assertTrue(child.isAlive(), "the child finished before it could be interrupted:\n" + Files.readString(dir.resolve("child.log")));
    }

    /** Resumes the interrupted run in this JVM and compares every step's loss with the uninterrupted run's. */
    private static void resumeAndCompare(List<String> common, Path straight, Path interrupted, int reached) {
        assertEquals(0, quiet(() -> Main.run(args(common, "--output", interrupted.toString(), "--resume").toArray(String[]::new))));
        List<JsonObject> a = new MetricsLog(straight).read();
        List<JsonObject> b = new MetricsLog(interrupted).read();
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            if (!a.get(i).has("loss")) continue;
            assertEquals(a.get(i).get("step").getAsInt(), b.get(i).get("step").getAsInt());
            assertEquals(a.get(i).get("loss").getAsDouble(), b.get(i).get("loss").getAsDouble(), 1e-7,
                    "step " + a.get(i).get("step") + " after resuming from " + reached);
        }
    }

    @Test
    void metricsCountRealPaddedAndLabelledTokensAndNameThePassAutoTook() {
        Path model = Reference.reference("hf/a/model");
        List<Example> data = List.of(new Example(new long[]{49, 584, 613, 796, 223, 10, 11}, new long[]{49, 584, 613, 796, 223, 10, 11}),
                new Example(new long[]{7, 8, 9, 10, 11}, new long[]{-100, -100, 9, 10, 11}),
                new Example(new long[]{3, 4, 5}, new long[]{3, 4, 5}));
        for (long budget : new long[]{0, 1}) {                        // 0: the default share of RAM; 1 byte: nothing fits
            TrainConfig config = TrainConfig.builder().output(dir.resolve("run-" + budget)).epochs(2).batchSize(2).lr(0.1)
                    .maxMemory(budget).seed(3).build();
            List<String> log = new ArrayList<>();
            TrainingListener listener = new TrainingListener() {
                @Override public void onMessage(String line) { log.add(line); }
            };
            try (BloomModel m = BloomModel.load(model); SoftPrompt prompt = SoftPrompt.random(5, 64, 1)) {
                AdapterConfig ac = AdapterConfig.forModel(m.config(), 5, PromptInit.RANDOM, null, "hf/a");
                new Trainer<>(new CausalLmTask(m), config, ac, listener).train(prompt, data, List.of(), RunMode.NEW);
            }
            long peakAfter = ProcessMemory.peakResidentBytes() >> 20;
            String expected = budget == 0 ? "AUTOGRAD" : "RECOMPUTE_BLOCKS";
            assertTrue(log.getFirst().startsWith("reverse pass " + expected + " (estimated peak "), log.toString());
            List<JsonObject> steps = new MetricsLog(config.output()).read();
            assertEquals(4, steps.size(), "two steps per epoch: rows {2, 1}");
            for (int epoch = 0; epoch < 2; epoch++) {
                final int e = epoch;
                List<JsonObject> inEpoch = steps.stream().filter(r -> r.get("epoch").getAsInt() == e).toList();
                assertEquals(7 + 5 + 3, inEpoch.stream().mapToLong(r -> r.get("tokens").getAsLong()).sum());
                // labels shift by one, and the last virtual token predicts each text's first label (as in
                // PEFT's prompt tuning); the second example's first two are ignored
                assertEquals(7 + 3 + 3, inEpoch.stream().mapToLong(r -> r.get("loss_terms").getAsLong()).sum());
            }
            for (JsonObject r : steps) {
                long real = r.get("tokens").getAsLong();
                long padded = r.get("padded_tokens").getAsLong();
                // a pair is padded to its longer row ({7,5} → 14, {7,3} → 14, {5,3} → 10); a single row is not padded
                java.util.Map<Long, Long> pairs = java.util.Map.of(12L, 14L, 10L, 14L, 8L, 10L);
                assertEquals(pairs.getOrDefault(real, real), padded, r.toString());
                assertEquals(expected, r.get("reverse_pass").getAsString());
                assertEquals(real / r.get("seconds").getAsDouble(), r.get("tokens_per_s").getAsDouble(), 1e-6 * real);
            }
            // the process's peak since training started (this JVM trained): never falling, at most the peak read after the
            // run — within the slack of Linux's RSS counters, which threads update in batches (a read may lag by a few MiB)
            long slack = 8;
            long previous = 1;
            for (JsonObject r : steps) {
                long peak = r.get("peak_rss_mib").getAsLong();
                assertTrue(peak >= previous - slack && peak <= peakAfter + slack, previous + " ≤ " + peak + " ≤ " + peakAfter + ": " + r);
                previous = Math.max(previous, peak);
            }
        }
    }

    @Test
    void nonFiniteLossStopsTheRunNamingTheStep() throws IOException {
        // A checkpoint whose final layer norm has a NaN bias: the very first loss is NaN.
        Path broken = dir.resolve("nan-model");
        Files.createDirectories(broken);
        Path source = Reference.reference("hf/a/model");
        Files.copy(source.resolve("config.json"), broken.resolve("config.json"));
        java.util.Map<String, org.bytedeco.pytorch.Tensor> weights = new java.util.LinkedHashMap<>();
        try (org.bloomtune.io.SafetensorsFile f = org.bloomtune.io.SafetensorsFile.open(source.resolve("model.safetensors"))) {
            for (String n : f.names()) weights.put(n, f.copy(n));
        }
        weights.get("transformer.ln_f.bias").fill_(new org.bytedeco.pytorch.Scalar(Double.NaN));
        org.bloomtune.io.SafetensorsWriter.write(broken.resolve("model.safetensors"), weights);
        List<Example> data = List.of(new Example(new long[]{5, 6, 7}, new long[]{5, 6, 7}));
        TrainConfig config = TrainConfig.builder().output(dir.resolve("run")).epochs(1).batchSize(1).lr(0.1)
                .schedule(LrSchedule.Decay.CONSTANT).checkpointEvery(1).reversePass(ReversePass.AUTOGRAD).seed(1).build();
        try (BloomModel m = BloomModel.load(broken); SoftPrompt prompt = SoftPrompt.random(2, 64, 1)) {
            AdapterConfig ac = AdapterConfig.forModel(m.config(), 2, PromptInit.RANDOM, null, "nan");
            Trainer.DivergedException e = org.junit.jupiter.api.Assertions.assertThrows(Trainer.DivergedException.class,
                    () -> new Trainer<>(new CausalLmTask(m), config, ac, TrainingListener.SILENT).train(prompt, data, List.of(), RunMode.NEW));
            assertTrue(e.getMessage().contains("loss became NaN at step 1"), e.getMessage());
        }
    }

    private static List<String> args(List<String> common, String... more) {
        List<String> all = new ArrayList<>(common);
        all.addAll(List.of(more));
        return all;
    }

    private static int quiet(java.util.function.IntSupplier run) {
        PrintStream out = System.out;
        System.setOut(new PrintStream(new ByteArrayOutputStream()));
        try {
            return run.getAsInt();
        } finally {
            System.setOut(out);
        }
    }

    private static String demoSample(int n) throws IOException {
        var all = JsonParser.parseString(Files.readString(Path.of("models/demo-data/alpaca_zh_demo_first300.json"))).getAsJsonArray();
        var out = new com.google.gson.JsonArray();
        for (int i = 0; i < n; i++) out.add(all.get(i));
        return out.toString();
    }
}
