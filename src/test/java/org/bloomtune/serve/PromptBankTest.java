package org.bloomtune.serve;

import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A mixed batch (each row its own prompt) equals running every row alone with its prompt. */
class PromptBankTest {
    static final Path HF_A = Reference.reference("hf/a");

    @ParameterizedTest
    @EnumSource(value = ReversePass.class, names = "AUTO", mode = EnumSource.Mode.EXCLUDE)   // the two passes; AUTO picks one of them
    void mixedBatchGivesEachRowsOwnLogitsAndGradients(ReversePass pass) {
        Map<String, Tensor> g = Reference.read(HF_A.resolve("goldens.safetensors"));
        Tensor ids = g.get("inputs.lp.input_ids");
        Tensor mask = g.get("inputs.lp.attention_mask");
        Tensor labels = g.get("inputs.lp.labels");
        try (BloomModel model = BloomModel.load(HF_A.resolve("model")); PromptBank bank = bank(model)) {
            List<String> tasks = List.of("text", "random");
            float[][] rowLogits = new float[2][];
            float[][] rowGrad = new float[2][];
            for (int b = 0; b < 2; b++) {
                SoftPrompt p = bank.prompt(tasks.get(b));
                try (PointerScope s = new PointerScope()) {
                    Tensor rowIds = ids.narrow(0, b, 1), rowMask = mask.narrow(0, b, 1), rowLabels = labels.narrow(0, b, 1);
                    try (GradMode off = GradMode.off();
                         CausalLmOutput out = model.forward(PromptedInput.of(model, p, rowIds, rowMask, rowLabels))) {
                        rowLogits[b] = Tensors.toFloats(out.logits());
                    }
                    // Mean over the batch = (sum of row sums) / count; weight each row's gradient by its share.
                    p.zeroGrad();
                    PromptBackward.lossAndGrad(model, PromptedInput.of(model, p, rowIds, rowMask, rowLabels), pass);
                    rowGrad[b] = Tensors.toFloats(p.grad());
                }
            }
            bank.names().forEach(n -> bank.prompt(n).zeroGrad());
            try (PointerScope s = new PointerScope()) {
                var input = PromptedInput.of(model, bank.rows(tasks), ids, mask, labels);
                try (GradMode off = GradMode.off(); CausalLmOutput out = model.forward(input)) {
                    float[] mixed = Tensors.toFloats(out.logits());
                    int per = rowLogits[0].length;
                    for (int b = 0; b < 2; b++) {
                        float[] row = java.util.Arrays.copyOfRange(mixed, b * per, (b + 1) * per);
                        assertTrue(maxDiff(row, rowLogits[b]) <= 1e-5, "row " + b + " logits differ");
                    }
                }
                PromptBackward.lossAndGrad(model, PromptedInput.of(model, bank.rows(tasks), ids, mask, labels), pass);
                // The batch loss averages over all counted labels; a row's own loss over its own.
                long[] counts = counted(labels);
                double total = counts[0] + counts[1];
                for (int b = 0; b < 2; b++) {
                    float[] mixedGrad = Tensors.toFloats(bank.prompt(tasks.get(b)).grad());
                    float[] expected = rowGrad[b].clone();
                    for (int i = 0; i < expected.length; i++) expected[i] *= (float) (counts[b] / total);
                    double scale = 0;
                    for (float v : expected) scale = Math.max(scale, Math.abs(v));
                    assertTrue(maxDiff(mixedGrad, expected) / scale <= 1e-5, pass + ": row " + b + " gradient differs");
                }
            }
        }
    }

    @Test
    void mixedGenerationEqualsPerPromptGeneration() {
        try (BloomModel model = BloomModel.load(HF_A.resolve("model")); PromptBank bank = bank(model)) {
            List<long[]> prompts = List.of(new long[]{49, 584, 613}, new long[]{7, 8, 9, 10, 11});
            GenerationConfig greedy = GenerationConfig.greedy(6, -1);
            GenerationResult mixed = PromptedGeneration.generate(model, bank.rows(List.of("random", "text")), prompts, greedy, TokenListener.NONE);
            assertArrayEquals(PromptedGeneration.generate(model, bank.prompt("random"), List.of(prompts.get(0)), greedy, TokenListener.NONE).row(0), mixed.row(0));
            assertArrayEquals(PromptedGeneration.generate(model, bank.prompt("text"), List.of(prompts.get(1)), greedy, TokenListener.NONE).row(0), mixed.row(1));
        }
    }

    @Test
    void bankRoundTripsAsPeftAdapterDirectories(@TempDir Path dir) {
        try (BloomModel model = BloomModel.load(HF_A.resolve("model")); PromptBank bank = bank(model)) {
            bank.save(dir.resolve("bank"));
            try (PromptBank loaded = PromptBank.load(dir.resolve("bank"), model.config())) {
                assertEquals(bank.names(), loaded.names());
                for (String n : bank.names()) {
                    assertArrayEquals(Tensors.toFloats(bank.prompt(n).weight()), Tensors.toFloats(loaded.prompt(n).weight()));
                    assertEquals(bank.config(n), loaded.config(n));
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bank.prompt("summarize"));
            assertTrue(e.getMessage().contains("no task named 'summarize'"));
        }
    }

    static PromptBank bank(BloomModel model) {
        PromptBank bank = new PromptBank();
        for (String name : new String[]{"random", "text"}) {
            PeftAdapter.Loaded a = PeftAdapter.load(HF_A.resolve("adapters").resolve(name), model.config());
            bank.put(name, a.config(), a.prompt());
        }
        return bank;
    }

    private static long[] counted(Tensor labels) {
        long[] l = Tensors.toLongs(labels);
        int width = (int) labels.size(1);
        long[] counts = new long[(int) labels.size(0)];
        for (int b = 0; b < counts.length; b++) {
            // With N virtual tokens in front, every original label is predicted (the first by the last virtual token).
            for (int t = 0; t < width; t++) if (l[b * width + t] != -100) counts[b]++;
        }
        return counts;
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
