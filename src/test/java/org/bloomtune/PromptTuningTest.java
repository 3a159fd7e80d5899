package org.bloomtune;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.classify.ClassifyReader;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.cli.Main;
import org.bloomtune.data.AlpacaReader;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.TrainingListener;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The recipe from a plain Java program and from the CLI with the same settings: the same losses at
 * every step, bit for bit, and byte-identical adapters — the CLI adds nothing but flag parsing.
 */
class PromptTuningTest {
    static final Path TINY = Path.of("models/bloom-tiny");

    @TempDir
    Path dir;

    @Test
    void instructionsFromJavaEqualTheCli() throws IOException {
        Path data = Path.of("models/demo-data/alpaca_zh_demo_first300.json");
        assertEquals(0, cli("train", "--model", TINY.toString(), "--data", data.toString(), "--output", dir.resolve("cli").toString(),
                "--eval-split", "0.2", "--batch-size", "2", "--max-length", "64", "--max-steps", "5", "--checkpoint-every", "2",
                "--init", "TEXT", "--init-text", "这是一段人与助手的对话：", "--lr", "0.03", "--seed", "7"));
        try (BloomModel model = BloomModel.load(TINY)) {
            PromptTuning.of(model)
                    .tokenizer(Tokenizer.load(TINY.resolve("tokenizer.json")))
                    .virtualTokens(10).initText("这是一段人与助手的对话：").baseModel(TINY.toString())
                    .task(Tasks.instructions(AlpacaReader.read(data, false).records()).maxLength(64).evalSplit(0.2))
                    .config(TrainConfig.builder().batchSize(2).maxSteps(5).checkpointEvery(2).lr(0.03).seed(7).build())
                    .train(dir.resolve("java"));
        }
        assertSameRun(dir.resolve("cli"), dir.resolve("java"));
    }

    @Test
    void classificationFromJavaEqualsTheCli() throws IOException {
        Path lines = dir.resolve("reviews.tsv");
        Files.write(lines, Files.readAllLines(Reference.chnSentiCorpTrain()).subList(0, 40));
        Path verbalizer = Path.of("models/verbalizers/sentiment-zh.json");
        assertEquals(0, cli("train", "--task", "classify", "--verbalizer", verbalizer.toString(), "--model", TINY.toString(),
                "--data", lines.toString(), "--output", dir.resolve("cli").toString(), "--eval-split", "0.25", "--batch-size", "8",
                "--max-length", "64", "--max-steps", "3", "--lr", "0.05"));
        try (BloomModel model = BloomModel.load(TINY)) {
            TrainedPrompt r = PromptTuning.of(model)
                    .tokenizer(Tokenizer.load(TINY.resolve("tokenizer.json"))).baseModel(TINY.toString())
                    .task(Tasks.classification(ClassifyReader.read(lines, true), Verbalizer.load(verbalizer)).maxLength(64).evalSplit(0.25))
                    .config(TrainConfig.builder().batchSize(8).maxSteps(3).lr(0.05).build())
                    .train(dir.resolve("java"));
            assertTrue(r.report().startsWith("train: accuracy"), r.report());
            assertEquals(Files.readString(dir.resolve("cli/adapter/verbalizer.json")), Files.readString(r.adapter().resolve("verbalizer.json")));
        }
        assertSameRun(dir.resolve("cli"), dir.resolve("java"));
    }

    @Test
    void packedInstructionsFromJavaEqualTheCliAndAResumeWithoutPackingIsRefused() throws IOException {
        Path data = Path.of("models/demo-data/alpaca_zh_demo_first300.json");
        List<String> flags = List.of("--model", TINY.toString(), "--data", data.toString(), "--eval-split", "0.2", "--batch-size", "2",
                "--max-length", "256", "--max-steps", "5", "--checkpoint-every", "2", "--lr", "0.03", "--seed", "7");
        List<String> args = new java.util.ArrayList<>(List.of("train", "--packing", "--output", dir.resolve("cli").toString()));
        args.addAll(flags);
        assertEquals(0, cli(args.toArray(String[]::new)));
        try (BloomModel model = BloomModel.load(TINY)) {
            Tokenizer tok = Tokenizer.load(TINY.resolve("tokenizer.json"));
            var records = AlpacaReader.read(data, false).records();
            PromptTuning.of(model).tokenizer(tok).baseModel(TINY.toString())
                    .task(Tasks.instructions(records).maxLength(256).evalSplit(0.2).packing(true))
                    .config(TrainConfig.builder().batchSize(2).maxSteps(5).checkpointEvery(2).lr(0.03).seed(7).build())
                    .train(dir.resolve("java"));
            // Every record once, in fewer rows of at most 256 tokens; evaluation stays unpacked.
            var plain = Tasks.instructions(records).maxLength(256).evalSplit(0.2).prepare(model, tok);
            var packed = Tasks.instructions(records).maxLength(256).evalSplit(0.2).packing(true).prepare(model, tok);
            @SuppressWarnings("unchecked") List<org.bloomtune.data.Example> rows = (List<org.bloomtune.data.Example>) packed.train();
            @SuppressWarnings("unchecked") List<org.bloomtune.data.Example> alone = (List<org.bloomtune.data.Example>) plain.train();
            int tokens = alone.stream().mapToInt(org.bloomtune.data.Example::length).sum();
            assertEquals(alone.size(), rows.stream().mapToInt(org.bloomtune.data.Example::records).sum());
            assertEquals(tokens, rows.stream().mapToInt(org.bloomtune.data.Example::length).sum());
            assertTrue(rows.stream().allMatch(r -> r.length() <= 256));
            System.out.printf("%d records, %d tokens → %d rows of 256%n", alone.size(), tokens, rows.size());
            assertTrue(rows.size() < alone.size() * 0.7, rows.size() + " rows for " + alone.size() + " records");
            assertTrue(rows.size() <= (tokens + 255) / 256 + rows.size() / 10, "best fit leaves few part-empty rows: " + rows.size());
            assertEquals(plain.eval().size(), packed.eval().size());
        }
        assertSameRun(dir.resolve("cli"), dir.resolve("java"));
        List<String> resume = new java.util.ArrayList<>(List.of("train", "--resume", "--output", dir.resolve("cli").toString()));
        resume.addAll(flags);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream e = System.err;
        System.setErr(new PrintStream(err));
        try {
            assertEquals(2, cli(resume.toArray(String[]::new)), "a resume without --packing feeds other rows");
        } finally {
            System.setErr(e);
        }
        assertTrue(err.toString().contains("train_data"), err.toString());
    }

    @Test
    void paddingFreeBatchesTrainAsPaddedOnesOnFewerPositions() throws IOException {
        Path data = Path.of("models/demo-data/alpaca_zh_demo_first300.json");
        List<String> flags = List.of("--model", TINY.toString(), "--data", data.toString(), "--eval-split", "0.1", "--batch-size", "4",
                "--max-length", "256", "--max-steps", "4", "--checkpoint-every", "2", "--lr", "0.03", "--seed", "3");
        List<String> free = new java.util.ArrayList<>(List.of("train", "--output", dir.resolve("free").toString()));
        free.addAll(flags);
        assertEquals(0, cli(free.toArray(String[]::new)));
        List<String> padded = new java.util.ArrayList<>(List.of("train", "--padded-batches", "--output", dir.resolve("cli").toString()));
        padded.addAll(flags);
        assertEquals(0, cli(padded.toArray(String[]::new)));
        try (BloomModel model = BloomModel.load(TINY)) {
            PromptTuning.of(model).tokenizer(Tokenizer.load(TINY.resolve("tokenizer.json"))).baseModel(TINY.toString())
                    .task(Tasks.instructions(AlpacaReader.read(data, false).records()).maxLength(256).evalSplit(0.1).paddingFree(false))
                    .config(TrainConfig.builder().batchSize(4).maxSteps(4).checkpointEvery(2).lr(0.03).seed(3).build())
                    .train(dir.resolve("java"));
        }
        assertSameRun(dir.resolve("cli"), dir.resolve("java"));
        // The same records per step: the same real tokens and, to rounding, the same losses — on fewer positions.
        List<JsonObject> a = steps(dir.resolve("free")), b = steps(dir.resolve("cli"));
        assertEquals(b.size(), a.size());
        long computedFree = 0, computedPadded = 0;
        for (int i = 0; i < a.size(); i++) {
            assertEquals(b.get(i).get("tokens").getAsLong(), a.get(i).get("tokens").getAsLong(), "real tokens of step " + (i + 1));
            double lb = b.get(i).get("loss").getAsDouble();
            assertEquals(lb, a.get(i).get("loss").getAsDouble(), 1e-5 * lb, "loss of step " + (i + 1));
            assertTrue(a.get(i).get("padded_tokens").getAsLong() <= b.get(i).get("padded_tokens").getAsLong());
            computedFree += a.get(i).get("padded_tokens").getAsLong();
            computedPadded += b.get(i).get("padded_tokens").getAsLong();
        }
        System.out.printf("positions computed over %d steps: padding-free %d, padded %d%n", a.size(), computedFree, computedPadded);
        assertTrue(computedFree < 0.9 * computedPadded, computedFree + " of " + computedPadded);
        // Resuming the padded run padding-free would not be exact: refused, naming the setting.
        List<String> resume = new java.util.ArrayList<>(List.of("train", "--resume", "--max-steps", "6", "--output", dir.resolve("cli").toString()));
        resume.addAll(flags.subList(0, flags.indexOf("--max-steps")));
        resume.addAll(flags.subList(flags.indexOf("--max-steps") + 2, flags.size()));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream e = System.err;
        System.setErr(new PrintStream(err));
        try {
            assertEquals(2, cli(resume.toArray(String[]::new)));
        } finally {
            System.setErr(e);
        }
        assertTrue(err.toString().contains("batch_rows"), err.toString());
    }

    private static List<JsonObject> steps(Path run) throws IOException {
        return Files.readAllLines(run.resolve("metrics.jsonl")).stream().map(l -> JsonParser.parseString(l).getAsJsonObject())
                .filter(o -> o.has("loss")).toList();
    }

    @Test
    void optionsAreCheckedNamingTheField() {
        try (BloomModel model = BloomModel.load(TINY)) {
            PromptTuning p = PromptTuning.of(model).tokenizer(Tokenizer.load(TINY.resolve("tokenizer.json"))).virtualTokens(0);
            assertEquals("num_virtual_tokens must lie in [1, 4096], got 0", assertThrows(IllegalArgumentException.class, p::adapterConfig).getMessage());
            PromptTuning q = PromptTuning.of(model).tokenizer(Tokenizer.load(TINY.resolve("tokenizer.json")));
            assertEquals("task must be given (Tasks.instructions or Tasks.classification)",
                    assertThrows(IllegalArgumentException.class, () -> q.train(dir.resolve("x"))).getMessage());
            assertEquals("max_steps must be >= 0 (0: run the epochs), got -4",
                    assertThrows(IllegalArgumentException.class, () -> TrainConfig.builder().maxSteps(-4).build()).getMessage());
            assertEquals("eval_split must lie in [0, 1), got 1.0", assertThrows(IllegalArgumentException.class,
                    () -> Tasks.instructions(AlpacaReader.read(Path.of("models/demo-data/alpaca_zh_demo_first300.json"), false).records()).evalSplit(1)).getMessage());
        }
        assertTrue(TrainingListener.SILENT != null);
    }

    /** Step losses (and the schedule, the clipping) equal to the last bit; adapters byte for byte. */
    private static void assertSameRun(Path a, Path b) throws IOException {
        List<String> x = Files.readAllLines(a.resolve("metrics.jsonl"));
        List<String> y = Files.readAllLines(b.resolve("metrics.jsonl"));
        assertEquals(x.size(), y.size());
        int steps = 0;
        for (int i = 0; i < x.size(); i++) {
            JsonObject p = JsonParser.parseString(x.get(i)).getAsJsonObject();
            JsonObject q = JsonParser.parseString(y.get(i)).getAsJsonObject();
            for (String key : List.of("step", "loss", "lr", "grad_norm", "eval_loss", "eval_accuracy")) {
                if (p.has(key)) assertEquals(p.get(key).getAsString(), q.get(key).getAsString(), key + " at record " + i);
            }
            if (p.has("loss")) steps++;
        }
        assertTrue(steps >= 3, "steps compared: " + steps);
        for (String f : List.of("adapter_model.safetensors", "adapter_config.json")) {
            assertArrayEquals(Files.readAllBytes(a.resolve("adapter").resolve(f)), Files.readAllBytes(b.resolve("adapter").resolve(f)), f);
        }
        assertTrue(Arrays.equals(Files.readAllBytes(a.resolve("adapter/adapter_model.safetensors")),
                Files.readAllBytes(b.resolve("adapter/adapter_model.safetensors"))));
    }

    private static int cli(String... args) {
        PrintStream out = System.out;
        System.setOut(new PrintStream(new ByteArrayOutputStream()));
        try {
            return Main.run(args);
        } finally {
            System.setOut(out);
        }
    }
}
