package org.bloomtune.cli;

import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptEncoder;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.bloomtune.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI contract for P-tuning and prefix adapters against PEFT's numbers (reference/hf-ptuning):
 * {@code forward --adapter DIR --grad} writes logits (virtual positions included for P-tuning, real
 * positions only for a prefix), loss, and {@code grad.<name>} for every trainable tensor — the
 * encoder's when DIR has {@code prompt_encoder.safetensors}, else {@code prompt_embeddings};
 * {@code generate --adapter DIR} prints PEFT's greedy ids.
 */
class PromptFamilyCliTest {
    @TempDir
    Path dir;

    private static Path caseDir(String set, String kase) { return Reference.reference("hf-ptuning").resolve(set).resolve(kase); }

    private static String model(String set) { return Reference.reference("hf").resolve(set).resolve("model").toString(); }

    @ParameterizedTest
    @CsvSource({"a,ptuning-mlp,AUTOGRAD", "b,ptuning-lstm,RECOMPUTE_BLOCKS", "a,prefix-proj,RECOMPUTE_BLOCKS", "b,prefix-proj,AUTOGRAD"})
    void forwardGradNamesEveryEncoderTensor(String set, String kase, String pass) {
        Map<String, Tensor> g = Reference.read(caseDir(set, kase).resolve("goldens.safetensors"));
        Path adapter = withEncoder(set, kase, g);
        Path output = forward(set, adapter, g, pass);
        try (SafetensorsFile out = SafetensorsFile.open(output); PointerScope scope = new PointerScope()) {
            checkLogitsAndLoss(out, g);
            int grads = 0;
            for (String name : out.names()) {
                if (!name.startsWith("grad.")) continue;
                Tensor expected = g.get("lp.grad.prompt_encoder.default." + name.substring("grad.".length()));
                assertTrue(expected != null, "unexpected output " + name);
                assertArrayEquals(Tensors.shape(expected), out.info(name).shape(), name);
                double rel = Reference.maxAbsDiff(out.tensor(name), expected) / Reference.maxAbs(expected);
                assertTrue(rel <= 1e-4, name + " relative error " + rel);
                grads++;
            }
            long expectedCount = g.keySet().stream().filter(k -> k.startsWith("lp.grad.")).count();
            assertEquals(expectedCount, grads, "one grad.<name> per trainable tensor: " + out.names());
        }
    }

    /** PEFT's own directory: the prompt is the trainable tensor, so the output has grad.prompt_embeddings. */
    @ParameterizedTest
    @CsvSource({"a,ptuning-lstm", "b,ptuning-mlp", "a,prefix", "b,prefix"})
    void forwardGradOfPeftsDirectoryIsThePromptEmbeddings(String set, String kase) {
        Map<String, Tensor> g = Reference.read(caseDir(set, kase).resolve("goldens.safetensors"));
        Path output = forward(set, caseDir(set, kase).resolve("adapter"), g, "RECOMPUTE_BLOCKS");
        try (SafetensorsFile out = SafetensorsFile.open(output); PointerScope scope = new PointerScope()) {
            checkLogitsAndLoss(out, g);
            // d loss / d prompt: P-tuning's rows are shared by the batch (summed); an unprojected prefix is the embedding itself.
            Tensor expected = kase.startsWith("ptuning") ? g.get("lp.grad_virtual_tokens").sum(0) : g.get("lp.grad.prompt_encoder.default.embedding.weight");
            double rel = Reference.maxAbsDiff(out.tensor("grad.prompt_embeddings"), expected) / Reference.maxAbs(expected);
            assertTrue(rel <= 1e-4, "grad.prompt_embeddings relative error " + rel);
            assertTrue(out.names().stream().filter(n -> n.startsWith("grad.")).count() == 1, out.names().toString());
        }
    }

    @ParameterizedTest
    @CsvSource({"a,ptuning-lstm", "b,ptuning-mlp", "a,prefix", "b,prefix-proj"})
    void generatePrintsPeftsGreedyIds(String set, String kase) {
        Map<String, Tensor> g = Reference.read(caseDir(set, kase).resolve("goldens.safetensors"));
        long[] prompt = Tensors.toLongs(g.get("gen.single.input_ids"));
        long[] sequence = Tensors.toLongs(g.get("gen.single.sequences"));
        String ids = String.join(",", Arrays.stream(prompt).mapToObj(Long::toString).toList());
        String expected = String.join(",", Arrays.stream(sequence).skip(prompt.length).mapToObj(Long::toString).toList());
        for (Path adapter : new Path[]{caseDir(set, kase).resolve("adapter"), withEncoder(set, kase, g)}) {
            CliTest.Run r = run("generate", "--model", model(set), "--adapter", adapter.toString(), "--ids", ids, "--max-new-tokens", "8");
            assertEquals(0, r.code(), r.err());
            assertEquals(expected, r.lastLine(), adapter.toString());
        }
    }

    @Test
    void mismatchedAdaptersAndFlagsAreRefusedByName() {
        Map<String, Tensor> g = Reference.read(caseDir("a", "prefix").resolve("goldens.safetensors"));
        Path input = input(g);
        CliTest.Run r = run("forward", "--model", model("b"), "--adapter", caseDir("a", "prefix").resolve("adapter").toString(),
                "--input", input.toString(), "--output", dir.resolve("x.safetensors").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("token_dim 64 does not match the model's hidden size 96"), r.err());
        String[][] bad = {
                {"--peft-type", "lora"}, {"--encoder-type", "LSTM"}, {"--peft-type", "prefix", "--encoder-type", "MLP"},
                {"--peft-type", "p-tuning", "--prefix-projection"}, {"--encoder-hidden-size", "8"},
                {"--peft-type", "p-tuning", "--encoder-type", "GRU"}, {"--peft-type", "prefix", "--init", "TEXT", "--init-text", "x"},
                {"--peft-type", "p-tuning", "--encoder-hidden-size", "0"}};
        String[] names = {"peft_type must be prompt, p-tuning or prefix", "--encoder-type needs --peft-type p-tuning",
                "--encoder-type needs --peft-type p-tuning", "--prefix-projection needs --peft-type prefix",
                "--encoder-hidden-size needs --peft-type p-tuning or prefix", "encoder_reparameterization_type must be MLP or LSTM",
                "--init and --init-text apply to --peft-type prompt", "--encoder-hidden-size must lie in [1, "};
        for (int i = 0; i < bad.length; i++) {
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("train", "--model", "models/bloom-tiny",
                    "--data", "models/demo-data/alpaca_zh_demo_first300.json", "--output", dir.resolve("run" + i).toString()));
            args.addAll(java.util.List.of(bad[i]));
            CliTest.Run t = run(args.toArray(String[]::new));
            assertEquals(2, t.code(), Arrays.toString(bad[i]) + ": " + t.err());
            assertTrue(t.err().contains(names[i]), Arrays.toString(bad[i]) + ": " + t.err());
            assertTrue(!t.err().contains("\tat "), "no stack trace");
        }
    }

    private void checkLogitsAndLoss(SafetensorsFile out, Map<String, Tensor> g) {
        assertArrayEquals(Tensors.shape(g.get("lp.logits")), out.info("logits").shape(), "logits cover what PEFT's do");
        assertTrue(Reference.maxAbsDiff(out.tensor("logits"), g.get("lp.logits")) <= 1e-4);
        assertEquals(Tensors.toFloat(g.get("lp.loss")), Tensors.toFloat(out.tensor("loss")), 1e-5);
    }

    private Path forward(String set, Path adapter, Map<String, Tensor> g, String pass) {
        Path output = dir.resolve("out-" + adapter.getFileName() + "-" + pass + ".safetensors");
        CliTest.Run r = run("forward", "--model", model(set), "--adapter", adapter.toString(), "--input", input(g).toString(),
                "--output", output.toString(), "--grad", "--reverse-pass", pass);
        assertEquals(0, r.code(), r.err());
        return output;
    }

    private Path input(Map<String, Tensor> g) {
        Map<String, Tensor> in = new LinkedHashMap<>();
        for (String f : new String[]{"input_ids", "attention_mask", "labels"}) in.put(f, g.get("inputs.lp." + f));
        Path input = dir.resolve("in.safetensors");
        SafetensorsWriter.write(input, in);
        return input;
    }

    /** PEFT's directory plus prompt_encoder.safetensors holding the encoder PEFT started from (params.*), when there is an encoder. */
    private Path withEncoder(String set, String kase, Map<String, Tensor> g) {
        Path out = dir.resolve(set + "-" + kase);
        AdapterConfig config = AdapterConfig.read(caseDir(set, kase).resolve("adapter").resolve(AdapterConfig.FILE));
        try (SoftPrompt prompt = org.bloomtune.peft.PromptFamilyParityTest.initial(config, g)) {
            PeftAdapter.save(out, config, prompt);
        }
        return out;
    }
}
