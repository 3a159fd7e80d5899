package org.bloomtune.cli;

import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CLI contract other tools rely on: flag names, file formats, output lines, exit codes. */
class CliTest {
    static final Path HF_A = Reference.reference("hf/a");

    @TempDir
    Path dir;

    record Run(int code, String out, String err) {
        String lastLine() {
            String[] lines = out.strip().split("\n");
            return lines[lines.length - 1];
        }
    }

    static Run run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void forwardWritesHfLogitsAndLoss() {
        Map<String, Tensor> g = Reference.read(HF_A.resolve("goldens.safetensors"));
        Path input = leftPaddedInput(g);
        Path output = dir.resolve("out.safetensors");
        Run r = run("forward", "--model", HF_A.resolve("model").toString(), "--input", input.toString(), "--output", output.toString());
        assertEquals(0, r.code(), r.err());
        try (SafetensorsFile out = SafetensorsFile.open(output)) {
            assertEquals(Map.of("format", "pt"), out.metadata());
            assertTrue(Reference.maxAbsDiff(out.tensor("logits"), g.get("base.lp.logits")) <= 1e-4);
            assertArrayEquals(new long[0], out.info("loss").shape(), "loss is a scalar");
            assertEquals(Tensors.toFloat(g.get("base.lp.loss")), Tensors.toFloat(out.tensor("loss")), 1e-5);
        }
    }

    @Test
    void generatePrintsHfGreedyIdsOnItsLastLine() {
        Map<String, Tensor> g = Reference.read(HF_A.resolve("goldens.safetensors"));
        long[] prompt = Tensors.toLongs(g.get("gen.single.input_ids"));
        long[] sequence = Tensors.toLongs(g.get("gen.base.single.sequences"));
        String ids = String.join(",", java.util.Arrays.stream(prompt).mapToObj(Long::toString).toList());
        String expected = String.join(",", java.util.Arrays.stream(sequence).skip(prompt.length).mapToObj(Long::toString).toList());
        // With the warm-up generation (the default; --greedy restates the default decoding) and without it.
        for (String flag : new String[]{"--greedy", "--no-warmup"}) {
            Run r = run("generate", "--model", HF_A.resolve("model").toString(), "--ids", ids, "--max-new-tokens", "8", flag);
            assertEquals(0, r.code(), r.err());
            assertEquals(expected, r.lastLine(), flag);
        }
    }

    @Test
    void forwardWithAdapterWritesPeftLogitsLossAndPromptGradient() {
        Map<String, Tensor> g = Reference.read(HF_A.resolve("goldens.safetensors"));
        Path input = leftPaddedInput(g);
        for (String pass : new String[]{"AUTOGRAD", "RECOMPUTE_BLOCKS"}) {
            Path output = dir.resolve(pass + ".safetensors");
            Run r = run("forward", "--model", HF_A.resolve("model").toString(), "--adapter", HF_A.resolve("adapters/random").toString(),
                    "--input", input.toString(), "--output", output.toString(), "--grad", "--reverse-pass", pass);
            assertEquals(0, r.code(), r.err());
            try (SafetensorsFile out = SafetensorsFile.open(output)) {
                assertTrue(Reference.maxAbsDiff(out.tensor("logits"), g.get("pt_random.lp.logits")) <= 1e-4);
                assertEquals(Tensors.toFloat(g.get("pt_random.lp.loss")), Tensors.toFloat(out.tensor("loss")), 1e-5);
                Tensor expected = g.get("pt_random.lp.prompt_grad");
                assertTrue(Reference.maxAbsDiff(out.tensor("prompt_grad"), expected) <= 1e-4 * Reference.maxAbs(expected), pass);
            }
        }
        assertBad(run("forward", "--model", HF_A.resolve("model").toString(), "--input", input.toString(),
                "--output", dir.resolve("x.safetensors").toString(), "--grad"), "--grad needs --adapter");
    }

    @Test
    void generateWithAdapterPrintsPeftGreedyIds() {
        Map<String, Tensor> g = Reference.read(HF_A.resolve("goldens.safetensors"));
        long[] prompt = Tensors.toLongs(g.get("gen.single.input_ids"));
        long[] sequence = Tensors.toLongs(g.get("gen.pt_text.single.sequences"));
        String ids = String.join(",", java.util.Arrays.stream(prompt).mapToObj(Long::toString).toList());
        Run r = run("generate", "--model", HF_A.resolve("model").toString(), "--adapter", HF_A.resolve("adapters/text").toString(),
                "--ids", ids, "--max-new-tokens", "8");
        assertEquals(0, r.code(), r.err());
        String expected = String.join(",", java.util.Arrays.stream(sequence).skip(prompt.length).mapToObj(Long::toString).toList());
        assertEquals(expected, r.lastLine());
        assertBad(run("generate", "--model", Reference.reference("hf/b/model").toString(), "--adapter",
                HF_A.resolve("adapters/text").toString(), "--ids", ids), "token_dim 64 does not match the model's hidden size 96");
    }

    @Test
    void int8ModesRunFromTheCommandLine() {
        for (String mode : new String[]{"weight-only", "llm-int8", "dequantize"}) {
            Run r = run("generate", "--model", HF_A.resolve("model").toString(), "--ids", "49,584,613", "--max-new-tokens", "3", "--int8", mode);
            assertEquals(0, r.code(), mode + ": " + r.err());
            assertEquals(3, r.lastLine().split(",").length);
        }
    }

    @Test
    void initModelWritesALoadableCheckpoint() {
        Path out = dir.resolve("tiny");
        Run r = run("init-model", "--like", "tiny", "--output", out.toString(), "--storage", "fp16", "--seed", "3");
        assertEquals(0, r.code(), r.err());
        Run g = run("generate", "--model", out.toString(), "--ids", "5,6,7", "--max-new-tokens", "4",
                "--temperature", "0.8", "--top-k", "50", "--top-p", "0.9", "--seed", "1");
        assertEquals(0, g.code(), g.err());
        assertEquals(4, g.lastLine().split(",").length);
    }

    /** Every subcommand picocli knows, so one added later is covered too. */
    static Stream<String> commands() {
        return new CommandLine(new Main()).getSubcommands().keySet().stream().filter(name -> !name.equals("help"));
    }

    @ParameterizedTest
    @MethodSource("commands")
    void everyCommandHasHelpWithEveryDescriptionFormatted(String command) {
        Run r = run(command, "--help");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("Usage: bloomtune " + command), r.out());
        // picocli formats descriptions with String.format: a bare '%' prints a warning and the raw text
        assertFalse((r.out() + r.err()).contains("picocli WARN"), r.err());
        assertFalse(r.out().contains("%n"), r.out());
    }

    @Test
    void badFlagsAndValuesExitWithTwoAndAMessage() {
        String model = HF_A.resolve("model").toString();
        assertBad(run("generate", "--model", model, "--ids", "1,2", "--bogus"), "Unknown option: '--bogus'");
        assertBad(run("generate", "--model", model, "--ids", "1,x"), "'x' is not a token id");
        assertBad(run("generate", "--model", model, "--ids", "1,99999"), "token 99999 is outside the vocabulary");
        assertBad(run("generate", "--model", model, "--ids", "1", "--top-p", "1.5"), "top-p must lie in (0, 1]");
        assertBad(run("generate", "--model", model, "--ids", "1", "--greedy", "--temperature", "0.7"), "--greedy cannot be combined");
        assertBad(run("generate", "--model", model, "--ids", "1", "--max-new-tokens", "0"), "max-new-tokens must be at least 1");
        assertBad(run("generate", "--model", model, "--ids", "1", "--dtype", "int3"), "unknown dtype 'int3'");
        assertBad(run("generate", "--model", dir.toString(), "--ids", "1"), "no config.json");
        assertBad(run("init-model", "--like", "bloom-9000", "--output", dir.toString()), "unknown model shape 'bloom-9000'");
        assertBad(run("forward", "--model", model, "--input", dir.resolve("missing.safetensors").toString(),
                "--output", dir.resolve("o.safetensors").toString()), "missing.safetensors");
        assertBad(run(), "a command is required");
        assertBad(run("generate", "--model", model, "--ids", "1", "--int8", "int4"), "unknown int8 mode 'int4'");
        assertBad(run("generate", "--model", model, "--ids", "1", "--int8", "llm-int8", "--int8-threshold", "-1"),
                "threshold must be a finite number >= 0");
        assertBad(run("generate", "--model", model, "--ids", "1", "--int8", "weight-only", "--device", "cuda"), "has a CPU kernel only");
    }

    /** hf/a's left-padded batch as a forward input file. */
    private Path leftPaddedInput(Map<String, Tensor> g) {
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("input_ids", g.get("inputs.lp.input_ids"));
        in.put("attention_mask", g.get("inputs.lp.attention_mask"));
        in.put("labels", g.get("inputs.lp.labels"));
        Path input = dir.resolve("in.safetensors");
        SafetensorsWriter.write(input, in);
        return input;
    }

    private static void assertBad(Run r, String message) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        assertTrue(r.err().contains(message), "expected '" + message + "' in: " + r.err());
    }
}
