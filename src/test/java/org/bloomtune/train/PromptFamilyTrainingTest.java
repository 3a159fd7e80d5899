package org.bloomtune.train;

import com.google.gson.JsonObject;
import org.bloomtune.Reference;
import org.bloomtune.data.Example;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.EncoderConfig;
import org.bloomtune.peft.EncoderType;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * P-tuning and prefix tuning through the same trainer as prompt tuning: the loss falls, a run
 * stopped after a checkpoint resumes exactly (encoder weights and AdamW moments restored), and the
 * adapter written is PEFT's two files plus the live encoder, which reloads to the trained weights.
 */
class PromptFamilyTrainingTest {
    @TempDir
    Path dir;

    static final List<Example> DATA = List.of(
            new Example(new long[]{49, 584, 613, 796, 223, 10, 11}, new long[]{49, 584, 613, 796, 223, 10, 11}),
            new Example(new long[]{7, 8, 9, 10, 11}, new long[]{7, 8, 9, 10, 11}));

    static AdapterConfig config(BloomModel m, String method) {
        return switch (method) {
            case "p-tuning-mlp" -> AdapterConfig.withEncoder(m.config(), PeftType.P_TUNING, 4, EncoderConfig.pTuning(EncoderType.MLP, 32), "hf/a");
            case "p-tuning-lstm" -> AdapterConfig.withEncoder(m.config(), PeftType.P_TUNING, 4, EncoderConfig.pTuning(EncoderType.LSTM, 16), "hf/a");
            case "prefix" -> AdapterConfig.withEncoder(m.config(), PeftType.PREFIX_TUNING, 4, EncoderConfig.prefix(false, 64), "hf/a");
            case "prefix-proj" -> AdapterConfig.withEncoder(m.config(), PeftType.PREFIX_TUNING, 4, EncoderConfig.prefix(true, 32), "hf/a");
            default -> throw new IllegalArgumentException(method);
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"p-tuning-mlp", "p-tuning-lstm", "prefix", "prefix-proj"})
    void trainsResumesExactlyAndWritesALiveEncoder(String method) throws Exception {
        TrainConfig straight = TrainConfig.builder().output(dir.resolve("straight")).epochs(12).batchSize(2).lr(0.1)
                .checkpointEvery(4).seed(1).build();
        try (BloomModel m = BloomModel.load(Reference.reference("hf/a/model"))) {
            AdapterConfig ac = config(m, method);
            Trainer.Summary s;
            try (SoftPrompt prompt = SoftPrompt.init(m, ac, null, 3)) {
                s = new Trainer<>(new CausalLmTask(m), straight, ac, TrainingListener.SILENT).train(prompt, DATA, List.of(), RunMode.NEW);
                checkAdapter(m, ac, prompt, s.adapter());
            }
            List<JsonObject> a = steps(straight.output());
            double first = a.getFirst().get("loss").getAsDouble();
            System.out.printf("%s: loss %.4f -> %.4f over %d steps%n", method, first, s.lastLoss(), s.steps());
            assertTrue(s.lastLoss() < 0.8 * first, method + ": loss " + first + " -> " + s.lastLoss());

            // The same run stopped at step 6 (checkpoint 4 on disk), then resumed from a fresh init.
            TrainConfig stopped = TrainConfig.builder().output(dir.resolve("stopped")).epochs(12).batchSize(2).lr(0.1)
                    .checkpointEvery(4).seed(1).build();
            TrainingListener stopAtSix = new TrainingListener() {
                @Override public void onStep(int step, int total, int firstStep, double loss, double tokensPerSecond) {
                    if (step == 6) throw new IllegalStateException("stopped");
                }
            };
            try (SoftPrompt prompt = SoftPrompt.init(m, ac, null, 3)) {
                assertThrows(IllegalStateException.class, () -> new Trainer<>(new CausalLmTask(m), stopped, ac, stopAtSix).train(prompt, DATA, List.of(), RunMode.NEW));
            }
            try (SoftPrompt prompt = SoftPrompt.init(m, ac, null, 99)) {     // another init: the checkpoint must replace it
                new Trainer<>(new CausalLmTask(m), stopped, ac, TrainingListener.SILENT).train(prompt, DATA, List.of(), RunMode.RESUME);
            }
            List<JsonObject> b = steps(stopped.output());
            assertEquals(a.size(), b.size());
            for (int i = 0; i < a.size(); i++) {
                assertEquals(a.get(i).get("loss").getAsDouble(), b.get(i).get("loss").getAsDouble(), 1e-7, method + " step " + (i + 1));
            }
        }
    }

    private static List<JsonObject> steps(Path run) {
        return new MetricsLog(run).read().stream().filter(r -> r.has("loss")).toList();
    }

    /** PEFT's prompt_embeddings = the trained encoder's output; the encoder file reloads to the trained weights. */
    private static void checkAdapter(BloomModel m, AdapterConfig ac, SoftPrompt trained, Path adapter) throws Exception {
        assertEquals(trained.encoder() != null, Files.exists(adapter.resolve(PeftAdapter.ENCODER)));
        try (PeftAdapter.Loaded back = PeftAdapter.load(adapter, m.config()); PointerScope scope = new PointerScope();
             GradMode off = GradMode.off()) {
            assertEquals(ac, back.config(), "the config round-trips");
            assertArrayEquals(Tensors.toFloats(trained.weight()), Tensors.toFloats(back.prompt().weight()));
            Map<String, org.bytedeco.pytorch.Tensor> saved = Reference.read(adapter.resolve(PeftAdapter.WEIGHTS));
            assertTrue(Reference.maxAbsDiff(saved.get(PeftAdapter.KEY), trained.output()) <= 1e-6);
        }
    }
}
