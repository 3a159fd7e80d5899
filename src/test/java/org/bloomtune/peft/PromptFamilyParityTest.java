package org.bloomtune.peft;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.AttentionKernel;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * P-tuning (MLP and LSTM encoders) and prefix tuning (with and without projection) against what
 * PEFT 0.10 + transformers 4.39.3 computed on the same models (reference/hf-ptuning): the encoder's
 * output, logits at all positions, loss, the gradient of every encoder tensor by both reverse
 * passes, greedy ids with the prompt in the KV cache, and PEFT's own adapter directories.
 */
public class PromptFamilyParityTest {
    private static final String PARAM = "prompt_encoder.default.";

    static Path caseDir(String set, String kase) { return Reference.reference("hf-ptuning").resolve(set).resolve(kase); }

    static BloomModel model(String set, LoadOptions options) { return BloomModel.load(Reference.reference("hf").resolve(set).resolve("model"), options); }

    /** The trainable prompt with the encoder weights PEFT started from ({@code params.*}). */
    public static SoftPrompt initial(AdapterConfig config, Map<String, Tensor> g) {
        Map<String, Tensor> named = Reference.peftParams(g);
        PromptEncoder encoder = PromptEncoder.of(config);
        if (encoder == null) return SoftPrompt.of(config.peftType(), named.get("embedding.weight"));
        try (PointerScope scope = new PointerScope()) {
            return SoftPrompt.encoded(config, encoder.layout().pack(named, "goldens"));
        }
    }

    @ParameterizedTest
    @CsvSource({"a,ptuning-mlp", "a,ptuning-lstm", "a,prefix", "a,prefix-proj", "b,ptuning-mlp", "b,ptuning-lstm", "b,prefix", "b,prefix-proj"})
    void matchesPeft(String set, String kase) {
        Path dir = caseDir(set, kase);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        AdapterConfig config = AdapterConfig.read(dir.resolve("adapter").resolve(AdapterConfig.FILE));
        try (BloomModel model = model(set, LoadOptions.defaults()); SoftPrompt prompt = initial(config, g);
             PointerScope scope = new PointerScope()) {
            Tensor expectedOutput = g.get(config.peftType() == PeftType.P_TUNING ? "virtual_tokens" : "prefix_raw");
            try (GradMode off = GradMode.off()) {
                double err = Reference.maxAbsDiff(prompt.output(), expectedOutput);
                assertTrue(err <= 1e-6, "encoder output max-abs error " + err);
            }
            for (String pad : new String[]{"lp", "rp"}) check(model, prompt, g, pad, true);
        }
    }

    /** libtorch's fused attention with the folded bias gives PEFT's numbers too, prefix included. */
    @ParameterizedTest
    @CsvSource({"a,prefix-proj", "b,prefix", "b,ptuning-lstm"})
    void fusedAttentionMatchesPeft(String set, String kase) {
        Path dir = caseDir(set, kase);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        AdapterConfig config = AdapterConfig.read(dir.resolve("adapter").resolve(AdapterConfig.FILE));
        try (BloomModel model = model(set, LoadOptions.defaults().withAttention(AttentionKernel.SDPA)); SoftPrompt prompt = initial(config, g);
             PointerScope scope = new PointerScope()) {
            check(model, prompt, g, "lp", true);
        }
    }

    /** Logits and loss, then the gradient of every trainable tensor by both passes (rp: PEFT stored the embedding's only). */
    static void check(BloomModel model, SoftPrompt prompt, Map<String, Tensor> g, String pad, boolean gradients) {
        Tensor ids = g.get("inputs." + pad + ".input_ids");
        Tensor mask = g.get("inputs." + pad + ".attention_mask");
        Tensor labels = g.get("inputs." + pad + ".labels");
        float expectedLoss = Tensors.toFloat(g.get(pad + ".loss"));
        try (GradMode off = GradMode.off(); CausalLmOutput out = model.forward(PromptedInput.of(model, prompt, ids, mask, labels))) {
            double err = Reference.maxAbsDiff(out.logits(), g.get(pad + ".logits"));
            assertTrue(err <= 1e-4, pad + " logits max-abs error " + err);
            assertEquals(expectedLoss, Tensors.toFloat(out.loss()), 1e-5, pad + " loss");
        }
        if (!gradients) return;
        Map<String, float[]> byPass = new LinkedHashMap<>();
        for (ReversePass pass : new ReversePass[]{ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS}) {
            prompt.zeroGrad();
            float loss = PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, mask, labels), pass);
            assertEquals(expectedLoss, loss, 1e-5, pass + " loss");
            int compared = 0;
            for (Map.Entry<String, Tensor> e : prompt.namedGradients().entrySet()) {
                String name = e.getKey().equals(SoftPrompt.PROMPT_EMBEDDINGS) ? "embedding.weight" : e.getKey();
                Tensor expected = g.get(pad + ".grad." + PARAM + name);
                if (expected == null) continue;
                double rel = Reference.maxAbsDiff(e.getValue(), expected) / Reference.maxAbs(expected);
                assertTrue(rel <= 1e-4, pad + " " + pass + " grad " + name + " relative error " + rel);
                compared++;
            }
            assertTrue(compared == (pad.equals("lp") ? prompt.namedGradients().size() : 1), "gradients compared: " + compared);
            byPass.put(pass.name(), Tensors.toFloats(prompt.grad()));
        }
        assertTrue(Reference.relativeMaxDiff(byPass.get("AUTOGRAD"), byPass.get("RECOMPUTE_BLOCKS")) <= 1e-5, "the two passes differ");
    }

    @ParameterizedTest
    @CsvSource({"a,ptuning-mlp", "a,ptuning-lstm", "a,prefix", "a,prefix-proj", "b,ptuning-mlp", "b,ptuning-lstm", "b,prefix", "b,prefix-proj"})
    void greedyIdsMatchPeftGenerate(String set, String kase) {
        Path dir = caseDir(set, kase);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        try (BloomModel model = model(set, LoadOptions.defaults());
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapter"), model.config())) {
            for (String c : new String[]{"single", "lp"}) {
                List<long[]> prompts = Reference.unpad(g.get("gen." + c + ".input_ids"), g.get("gen." + c + ".attention_mask"));
                GenerationResult r = PromptedGeneration.generate(model, a.prompt(), prompts, GenerationConfig.greedy(8, -1), TokenListener.NONE);
                Tensor sequences = g.get("gen." + c + ".sequences");
                long[] all = Tensors.toLongs(sequences);
                int width = (int) sequences.size(1);
                for (int b = 0; b < prompts.size(); b++) {
                    long[] expected = new long[8];
                    System.arraycopy(all, b * width + width - 8, expected, 0, 8);
                    assertArrayEquals(expected, r.row(b), set + "/" + kase + " " + c + " row " + b);
                }
            }
        }
    }

    /** PEFT's directories hold the encoder's output only: they load as a fixed prompt and give the same logits. */
    @ParameterizedTest
    @CsvSource({"a,ptuning-mlp", "a,ptuning-lstm", "a,prefix", "a,prefix-proj", "b,ptuning-mlp", "b,ptuning-lstm", "b,prefix", "b,prefix-proj"})
    void peftAdapterDirectoriesLoad(String set, String kase) {
        Path dir = caseDir(set, kase);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        try (BloomModel model = model(set, LoadOptions.defaults());
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapter"), model.config());
             PointerScope scope = new PointerScope()) {
            assertEquals(PeftType.parse(kase.startsWith("prefix") ? "prefix" : "p-tuning"), a.prompt().type());
            assertTrue(a.prompt().encoder() == null, "PEFT's files carry no encoder");
            for (String pad : new String[]{"lp", "rp"}) check(model, a.prompt(), g, pad, false);
            assertEquals(List.of(SoftPrompt.PROMPT_EMBEDDINGS), List.copyOf(a.prompt().namedGradients().keySet()));
        }
    }

    /**
     * BloomTune's directory: PEFT's two files (prompt_embeddings = the encoder's output, config as
     * PEFT writes it) plus the encoder, which loads live and gives the same gradients.
     */
    @ParameterizedTest
    @CsvSource({"a,ptuning-lstm", "b,ptuning-mlp", "a,prefix-proj", "b,prefix"})
    void savedEncoderReloadsLive(String set, String kase, @TempDir Path tmp) throws Exception {
        Path dir = caseDir(set, kase);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        AdapterConfig config = AdapterConfig.read(dir.resolve("adapter").resolve(AdapterConfig.FILE));
        Path out = tmp.resolve("adapter");
        try (BloomModel model = model(set, LoadOptions.defaults()); SoftPrompt prompt = initial(config, g)) {
            PeftAdapter.save(out, config, prompt);
            assertEquals(Files.readString(dir.resolve("adapter").resolve(AdapterConfig.FILE)).strip(),
                    Files.readString(out.resolve(AdapterConfig.FILE)).strip(), "adapter_config.json as PEFT writes it");
            assertEquals(config.peftType() == PeftType.PREFIX_TUNING && !config.encoder().prefixProjection(),
                    !Files.exists(out.resolve(PeftAdapter.ENCODER)), "the encoder file exactly when there is an encoder");
            try (PeftAdapter.Loaded back = PeftAdapter.load(out, model.config()); PointerScope scope = new PointerScope()) {
                try (GradMode off = GradMode.off()) {
                    Map<String, Tensor> saved = Reference.read(out.resolve(PeftAdapter.WEIGHTS));
                    Tensor expected = g.get(config.peftType() == PeftType.P_TUNING ? "virtual_tokens" : "prefix_raw");
                    assertTrue(Reference.maxAbsDiff(saved.get(PeftAdapter.KEY), expected) <= 1e-6, "prompt_embeddings = the encoder output");
                }
                assertEquals(prompt.namedParameters().keySet(), back.prompt().namedParameters().keySet());
                check(model, back.prompt(), g, "lp", true);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"a,prefix"})
    void prefixLayoutIsPeftsPastKeyValues(String set, String kase) {
        Map<String, Tensor> g = Reference.read(caseDir(set, kase).resolve("goldens.safetensors"));
        Tensor raw = g.get("prefix_raw");
        int layers = 2;
        int heads = 4;
        try (PointerScope scope = new PointerScope()) {
            var prefix = new org.bloomtune.model.AttentionPrefix(raw.unsqueeze(0).expand(2, raw.size(0), raw.size(1)), layers, heads);
            for (int l = 0; l < layers; l++) {
                assertEquals(0.0, Reference.maxAbsDiff(prefix.key(l), g.get("past_key_values." + l + ".key")), "key " + l);
                assertEquals(0.0, Reference.maxAbsDiff(prefix.value(l), g.get("past_key_values." + l + ".value")), "value " + l);
            }
            assertFalse(Reference.maxAbsDiff(prefix.key(0), prefix.value(0).transpose(1, 2)) == 0, "keys are not the values' transpose");
        }
    }
}
