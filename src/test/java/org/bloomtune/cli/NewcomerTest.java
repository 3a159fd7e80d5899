package org.bloomtune.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.Tensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.bloomtune.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a new user runs into, one test per trap: nothing a user types loses a run, hangs, or prints
 * a Java or C++ stack; every refusal exits 2 with one line naming the flag, file or field.
 */
class NewcomerTest {
    static final String TINY = "models/bloom-tiny";

    @TempDir
    Path dir;

    // ---- losing a run ------------------------------------------------------------------------

    @Test
    void trainRefusesAnOutputThatHoldsARunAndOverwriteReplacesIt() throws IOException {
        Path data = alpaca(8);
        Path out = dir.resolve("run");
        assertEquals(0, train(data, out, "--max-steps", "2").code());
        Map<String, String> before = snapshot(out);
        CliTest.Run again = train(data, out, "--max-steps", "2");
        assertBad(again, out + " holds a run at step 2; resume it or overwrite it (the CLI: --resume or --overwrite)");
        assertEquals(before, snapshot(out), "a refused run touches nothing");
        assertBad(train(data, out, "--resume", "--overwrite"), "--resume and --overwrite contradict each other");
        assertBad(train(data, out, "--allow-changes"), "--allow-changes only applies with --resume");
        CliTest.Run overwritten = train(data, out, "--max-steps", "1", "--overwrite");
        assertEquals(0, overwritten.code(), overwritten.err());
        assertTrue(Files.isDirectory(out.resolve("checkpoint-1")) && !Files.exists(out.resolve("checkpoint-2")));
        assertEquals(1, metricSteps(out).size(), "metrics of the old run are gone: " + metricSteps(out));
    }

    @Test
    void resumeRefusesSettingsThatBreakExactnessUnlessAllowed() throws IOException {
        Path data = alpaca(8);
        Path out = dir.resolve("run");
        assertEquals(0, train(data, out, "--max-steps", "4", "--checkpoint-every", "2").code());
        Map<String, String> before = snapshot(out);
        assertBad(train(data, out, "--max-steps", "4", "--resume", "--virtual-tokens", "5"), "num_virtual_tokens was 10, now 5");
        assertBad(train(data, out, "--max-steps", "4", "--resume", "--batch-size", "3"), "batch_size was 2, now 3");
        assertBad(train(data, out, "--max-steps", "4", "--resume", "--lr", "0.1"), "lr was 0.003, now 0.1");
        assertBad(train(alpaca(7), out, "--max-steps", "4", "--resume"), "train_data was 8 examples, sha256");
        assertEquals(before, snapshot(out), "refused resumes touch nothing");
        assertBad(train(data, out, "--max-steps", "4", "--resume", "--allow-changes", "--virtual-tokens", "5"),
                "cannot be resumed, only overwritten");
        CliTest.Run allowed = train(data, out, "--max-steps", "6", "--resume", "--allow-changes", "--lr", "0.01");
        assertEquals(0, allowed.code(), allowed.err());
        assertTrue(allowed.out().contains("resuming with changed settings (no longer an exact resume): max_steps was 4, now 6; lr was 0.003, now 0.01"),
                allowed.out());
    }

    @Test
    void outputsGetTheUsersPermissionsAndInterruptedWritesAreCleared() throws IOException {
        Path out = dir.resolve("run");
        Files.createDirectories(out.resolve(".checkpoint.x1y2"));
        Files.writeString(out.resolve(".metrics.jsonl.abc.tmp"), "half");
        assertEquals(0, train(alpaca(4), out, "--max-steps", "1", "--overwrite").code());
        Set<PosixFilePermission> usual = Files.getPosixFilePermissions(Files.createDirectory(dir.resolve("plain")));
        assertEquals(usual, Files.getPosixFilePermissions(out.resolve("adapter")));
        assertEquals(usual, Files.getPosixFilePermissions(out.resolve("checkpoint-1")));
        Set<PosixFilePermission> file = Files.getPosixFilePermissions(Files.writeString(dir.resolve("plain.txt"), "x"));
        assertEquals(file, Files.getPosixFilePermissions(out.resolve("adapter/adapter_model.safetensors")));
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of(), s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList());
        }
    }

    // ---- clean errors ------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"cuda", "cuda:7", "tpu", "cpu:0"})
    void unavailableDevicesAreOneLine(String device) {
        CliTest.Run r = run("generate", "--model", TINY, "--ids", "5,6", "--device", device);
        assertBad(r, device);
        if (device.startsWith("cuda")) assertTrue(r.err().contains("CPU build of libtorch") && r.err().contains("-Pgpu"), r.err());
        else assertTrue(r.err().contains("device must be cpu, cuda or cuda:N"), r.err());
    }

    @Test
    void trainingFlagsAreCheckedBeforeAnythingLoads() throws IOException {
        Path data = alpaca(4);
        assertBad(train(data, dir.resolve("a"), "--virtual-tokens", "-2"), "--virtual-tokens must lie in [1, 4096], got -2");
        assertBad(train(data, dir.resolve("b"), "--virtual-tokens", "0"), "--virtual-tokens must lie in [1, 4096], got 0");
        assertBad(train(data, dir.resolve("c"), "--virtual-tokens", "100000"), "--virtual-tokens must lie in [1, 4096], got 100000");
        assertBad(train(data, dir.resolve("d"), "--max-steps", "-4"), "--max-steps: max_steps must be >= 0");
        assertBad(train(data, dir.resolve("e"), "--lr", "-1"), "--lr: lr must be a positive number");
        CliTest.Run huge = train(data, dir.resolve("f"), "--virtual-tokens", "4096", "--max-length", "60000", "--batch-size", "64",
                "--reverse-pass", "AUTOGRAD");
        assertBad(huge, "a training step of 64 × 64096 positions needs about");
        assertTrue(huge.err().contains("of memory are available; lower --virtual-tokens, --batch-size or --max-length"), huge.err());
        for (String d : List.of("a", "b", "c", "d", "e", "f")) assertFalse(Files.exists(dir.resolve(d)), d + " was created");
    }

    @Test
    void noEvalSplitMeansNoEvaluationNotNaN() throws IOException {
        CliTest.Run r = train(alpaca(4), dir.resolve("run"), "--max-steps", "1", "--eval-split", "0");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.out().contains("NaN"), r.out());
        assertTrue(r.out().contains("(no evaluation)"), r.out());
    }

    @Test
    void dataFilesWithABomTrainAndBrokenOnesAreNamed() throws IOException {
        String list = Files.readString(alpaca(4));
        Path bom = dir.resolve("bom.json");
        Files.write(bom, concat(new byte[]{(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, list.getBytes(StandardCharsets.UTF_8)));
        assertEquals(0, train(bom, dir.resolve("bom-run"), "--max-steps", "1").code());
        Path latin1 = dir.resolve("latin1.json");
        Files.write(latin1, "[{\"instruction\": \"caf\u00e9\", \"output\": \"x\"}]".getBytes(StandardCharsets.ISO_8859_1));
        assertBad(train(latin1, dir.resolve("l")), latin1 + ": invalid UTF-8 at byte offset 21 (0xE9)");
        Path nan = dir.resolve("nan.json");
        Files.writeString(nan, "[{\"instruction\": \"a\", \"input\": NaN, \"output\": \"b\"}]");
        assertBad(train(nan, dir.resolve("n")), nan + ": invalid JSON at column 32 (in $[0].input): unexpected text near 'NaN,");
        Path garbage = dir.resolve("garbage.json");
        Files.writeString(garbage, list + "]");
        assertBad(train(garbage, dir.resolve("g")), garbage + ": invalid JSON at column");
    }

    @Test
    void initModelKeepsAnExistingModel() throws IOException {
        Path out = dir.resolve("m");
        assertEquals(0, run("init-model", "--like", "tiny", "--output", out.toString()).code());
        byte[] weights = Files.readAllBytes(out.resolve("model.safetensors"));
        assertBad(run("init-model", "--like", "tiny", "--output", out.toString(), "--seed", "9"), out + " already holds a model (config.json); pass --overwrite");
        assertArrayEqualsBytes(weights, Files.readAllBytes(out.resolve("model.safetensors")));
        assertEquals(0, run("init-model", "--like", "tiny", "--output", out.toString(), "--seed", "9", "--overwrite").code());
        assertFalse(Arrays.equals(weights, Files.readAllBytes(out.resolve("model.safetensors"))));
        Path huge = dir.resolve("huge.json");
        Files.writeString(huge, "{\"vocab_size\": 1000, \"hidden_size\": 64, \"n_head\": 4, \"n_layer\": 2147483647}");
        assertBad(run("init-model", "--config", huge.toString(), "--output", dir.resolve("h").toString()), "n_layer must lie in [1, 4096], got 2147483647");
    }

    @Test
    void serveAnswersEveryGoodLineAndReportsBadOnesInPlace() throws IOException {
        Path adapter = dir.resolve("adapter");
        try (BloomModel m = BloomModel.load(Path.of(TINY)); SoftPrompt p = SoftPrompt.random(4, m.config().hiddenSize(), 3)) {
            PeftAdapter.save(adapter, AdapterConfig.forModel(m.config(), 4, PromptInit.RANDOM, null, TINY), p);
        }
        Path bank = dir.resolve("bank");
        assertEquals(0, run("bank", bank.toString(), "--add", "chat=" + adapter).code());
        Path requests = dir.resolve("requests.jsonl");
        Files.writeString(requests, String.join("\n", "{\"task\": \"chat\", \"text\": \"你好\"}", "{\"task\": \"chat\", \"text\": ",
                "{\"task\": \"nope\", \"text\": \"x\"}", "[1]", "{\"task\": \"chat\", \"text\": \"再见\"}") + "\n");
        CliTest.Run r = run("serve", "--model", TINY, "--bank", bank.toString(), "--requests", requests.toString(), "--max-new-tokens", "3");
        assertEquals(2, r.code(), r.err());
        List<JsonObject> lines = r.out().lines().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
        assertEquals(5, lines.size(), r.out());
        assertTrue(lines.get(0).has("generated") && lines.get(4).has("generated"));
        assertEquals(2, lines.get(1).get("line").getAsInt());
        assertTrue(lines.get(1).get("error").getAsString().contains("line 2: invalid JSON"));
        assertTrue(lines.get(2).get("error").getAsString().contains("unknown task 'nope'"));
        assertTrue(lines.get(3).get("error").getAsString().contains("expected a JSON object {task, text}, found a list"));
        assertTrue(r.err().contains("3 bad request line(s)"), r.err());
    }

    @Test
    void forwardRefusesEmptyInputsAndLyingSafetensors() throws IOException {
        Path input = dir.resolve("in.safetensors");
        SafetensorsWriter.write(input, Map.of("input_ids", Tensors.fromLongs(new long[0], 1, 0)));
        assertBad(run("forward", "--model", TINY, "--input", input.toString(), "--output", dir.resolve("o.safetensors").toString()),
                "input_ids must be [B, T] with B, T >= 1, is [1, 0]");
        assertFalse(Files.exists(dir.resolve("o.safetensors")));
        // A header length one byte short still parses (the header is padded with spaces) but shifts every tensor.
        Path model = copyModel(Reference.reference("hf/a/model"), dir.resolve("short"));
        byte[] bytes = Files.readAllBytes(model.resolve("model.safetensors"));
        ByteBuffer header = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        header.putLong(0, header.getLong(0) - 1);
        Files.write(model.resolve("model.safetensors"), bytes);
        assertBad(run("generate", "--model", model.toString(), "--ids", "5"), "the header length or data_offsets are wrong");
    }

    @Test
    void tokensATokenizerMadeAreBlamedOnTheTokenizer() {
        CliTest.Run r = run("generate", "--model", Reference.reference("hf/a/model").toString(), "--tokenizer", TINY + "/tokenizer.json",
                "--prompt", "你好，世界");
        assertBad(r, "--prompt: " + TINY + "/tokenizer.json produced token");
        assertTrue(r.err().contains("the tokenizer does not belong to this model"), r.err());
    }

    // ---- hangs ---------------------------------------------------------------------------------

    @Test
    void generateStreamsTextStopsAtStopStringsAndRefusesEndlessRuns() {
        assertBad(run("generate", "--model", TINY, "--prompt", "你好", "--max-new-tokens", "100000"), "is over 2048; pass --force");
        // The demo model degenerates under greedy decoding; seeded sampling gives it something to say.
        String[] sampling = {"--max-new-tokens", "24", "--temperature", "0.9", "--top-k", "40", "--seed", "3"};
        CliTest.Run plain = run(concat(new String[]{"generate", "--model", TINY, "--prompt", "Human: 如何缓解压力？\\n\\nAssistant: "}, sampling));
        assertEquals(0, plain.code(), plain.err());
        List<String> lines = plain.out().lines().toList();
        String ids = lines.getLast();
        assertTrue(ids.matches("\\d+(,\\d+)*"), ids);
        String text = plain.out().substring(0, plain.out().lastIndexOf(ids)).strip();
        assertTrue(text.startsWith("Human: 如何缓解压力？"), text);
        assertFalse(text.contains("</s>") || text.contains("\uFFFD"), text);
        String generated = text.substring(text.indexOf("Assistant:") + "Assistant:".length()).strip();
        assertTrue(generated.length() >= 4, "generated: " + generated);
        String stop = generated.substring(generated.length() / 2, generated.length() / 2 + 2);
        CliTest.Run stopped = run(concat(new String[]{"generate", "--model", TINY, "--prompt", "Human: 如何缓解压力？\\n\\nAssistant: ",
                "--stop", stop}, sampling));
        assertEquals(0, stopped.code(), stopped.err());
        String cut = stopped.out().substring(0, stopped.out().lastIndexOf(stopped.out().lines().toList().getLast())).strip();
        assertTrue(text.startsWith(cut) && !cut.contains(stop) && cut.length() < text.length(), "stop '" + stop + "': " + cut);
        assertTrue(stopped.out().lines().toList().getLast().split(",").length < ids.split(",").length);
    }

    // ---- what a newcomer reads -----------------------------------------------------------------

    @Test
    void progressIsPlainLinesWhenNotOnATerminal() throws IOException {
        CliTest.Run r = train(alpaca(8), dir.resolve("run"), "--max-steps", "4");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.out().contains("\r"), "carriage returns in a log");
        assertTrue(r.out().lines().filter(l -> l.startsWith("step ")).count() >= 2, r.out());
    }

    @Test
    void everyFlagOfEveryCommandSaysWhatItDoesAndItsDefault() {
        picocli.CommandLine cli = new picocli.CommandLine(new Main());
        List<String> missing = new ArrayList<>();
        for (var sub : cli.getSubcommands().values()) {
            String help = sub.getUsageMessage();
            for (var option : sub.getCommandSpec().options()) {
                String name = sub.getCommandName() + " " + option.longestName();
                if (String.join("", option.description()).isBlank()) missing.add(name + ": no description");
                String dflt = option.defaultValue();
                if (dflt != null && !option.usageHelp() && !option.versionHelp() && !option.type().equals(boolean.class)
                        && !help.contains("Default: " + dflt)) {
                    missing.add(name + ": default " + dflt + " not shown");
                }
            }
        }
        assertEquals(List.of(), missing);
    }

    @Test
    void commandsShareOneVocabulary() {
        picocli.CommandLine cli = new picocli.CommandLine(new Main());
        var profile = cli.getSubcommands().get("profile-step").getCommandSpec();
        assertTrue(profile.findOption("--batch-size") != null && profile.findOption("--max-length") != null);
        assertTrue(profile.findOption("--batch") == null && profile.findOption("--seq-len") == null);
        var init = cli.getSubcommands().get("init-model").getCommandSpec();
        assertTrue(init.findOption("--storage") != null && init.findOption("--dtype") == null, "--dtype means compute dtype everywhere");
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /** train on the embedded model with small defaults, each replaced where {@code more} gives the flag. */
    static CliTest.Run train(Path data, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--model", TINY, "--data", data.toString(), "--output", out.toString()));
        List<String> given = List.of(more);
        String[][] defaults = {{"--eval-split", "0"}, {"--batch-size", "2"}, {"--max-length", "64"}, {"--checkpoint-every", "1"}};
        for (String[] d : defaults) if (!given.contains(d[0])) args.addAll(List.of(d));
        args.addAll(given);
        return run(args.toArray(String[]::new));
    }

    private Path alpaca(int n) throws IOException {
        JsonArray all = JsonParser.parseString(Files.readString(Path.of("models/demo-data/alpaca_zh_demo_first300.json"))).getAsJsonArray();
        JsonArray out = new JsonArray();
        for (int i = 0; i < n; i++) out.add(all.get(i));
        Path file = dir.resolve("alpaca-" + n + ".json");
        Files.writeString(file, out.toString());
        return file;
    }

    private static List<Integer> metricSteps(Path run) throws IOException {
        return Files.readAllLines(run.resolve("metrics.jsonl")).stream().map(l -> JsonParser.parseString(l).getAsJsonObject())
                .filter(o -> o.has("loss")).map(o -> o.get("step").getAsInt()).toList();
    }

    /** Every file under {@code root} with its content hash. */
    static Map<String, String> snapshot(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.filter(Files::isRegularFile).toList()) out.put(root.relativize(p).toString(), Arrays.toString(sha(Files.readAllBytes(p))));
        }
        return out;
    }

    private static byte[] sha(byte[] bytes) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path copyModel(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path p : s.toList()) Files.copy(p, to.resolve(p.getFileName()));
        }
        return to;
    }

    /** Exit 2, one line on stderr naming what was wrong, no stack trace. */
    static void assertBad(CliTest.Run r, String message) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err() + "\nstdout: " + r.out());
        assertTrue(r.err().contains(message), "expected '" + message + "' in: " + r.err());
        assertNoStackTrace(r.err());
    }

    static void assertNoStackTrace(String err) {
        assertFalse(err.contains("\tat ") || err.contains("Exception") || err.contains("c10::") || err.contains("internal error"), err);
    }

    private static void assertArrayEqualsBytes(byte[] a, byte[] b) {
        assertTrue(Arrays.equals(a, b), "the file changed");
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
