package org.bloomtune.generate;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.bloomtune.model.AttentionKernel;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Greedy decoding with the KV cache gives exactly the ids HF's generate and the float64 reference gave. */
class GreedyParityTest {

    @ParameterizedTest
    @CsvSource({"a,EAGER", "b,EAGER", "a,SDPA", "b,SDPA"})
    void singleAndLeftPaddedBatchMatchHfGenerate(String set, AttentionKernel kernel) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        try (BloomModel model = BloomModel.load(dir.resolve("model"), LoadOptions.defaults().withAttention(kernel))) {
            for (String c : new String[]{"single", "lp"}) {
                List<long[]> prompts = Reference.unpad(g.get("gen." + c + ".input_ids"), g.get("gen." + c + ".attention_mask"));
                GenerationResult result = new Generator(model).generate(prompts, GenerationConfig.greedy(8, -1), TokenListener.NONE);
                long[] sequences = Tensors.toLongs(g.get("gen.base." + c + ".sequences"));
                int width = (int) g.get("gen.base." + c + ".sequences").size(1);
                for (int b = 0; b < prompts.size(); b++) {
                    long[] expected = new long[8];
                    System.arraycopy(sequences, b * width + width - 8, expected, 0, 8);
                    assertArrayEquals(expected, result.row(b), set + " " + c + " row " + b);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ref-a", "ref-b"})
    void tenGreedyTokensMatchFloat64Reference(String set) throws IOException {
        Path dir = Reference.reference(set);
        JsonObject cases = JsonParser.parseString(Files.readString(dir.resolve("cases.json"))).getAsJsonObject();
        long[] start = longs(cases.getAsJsonArray("start_ids"));
        long[] expected = longs(cases.getAsJsonObject("greedy_10").getAsJsonArray("plain"));
        try (BloomModel model = BloomModel.load(dir.resolve("model"))) {
            GenerationResult r = new Generator(model).generate(List.of(start), GenerationConfig.greedy(10, -1), TokenListener.NONE);
            assertArrayEquals(expected, r.row(0));
        }
    }

    @Test
    void aWarmUpRunsOneDecodeStepAndLeavesTheNextGenerationExact() throws IOException {
        Path dir = Reference.reference("ref-a");
        JsonObject cases = JsonParser.parseString(Files.readString(dir.resolve("cases.json"))).getAsJsonObject();
        try (BloomModel model = BloomModel.load(dir.resolve("model"))) {
            Generator generator = new Generator(model);
            GenerationStats stats = generator.warmUp(3);
            assertEquals(3, stats.rows());
            assertEquals(1, stats.prefillPositions());
            assertEquals(1, stats.decodeSteps());
            GenerationResult r = generator.generate(List.of(longs(cases.getAsJsonArray("start_ids"))), GenerationConfig.greedy(10, -1), TokenListener.NONE);
            assertArrayEquals(longs(cases.getAsJsonObject("greedy_10").getAsJsonArray("plain")), r.row(0));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> generator.warmUp(0));
            assertTrue(e.getMessage().contains("at least one row"), e.getMessage());
        }
    }

    @Test
    void aPrefillMaskOfTheWrongShapeIsRefusedByName() {
        try (BloomModel model = BloomModel.load(Reference.reference("ref-a").resolve("model"));
             PointerScope scope = new PointerScope()) {
            Tensor ids = Tensors.fromLongs(new long[]{49, 584, 613}, 1, 3);
            for (Tensor mask : new Tensor[]{Tensors.fromLongs(new long[]{1, 1, 1}, 3), Tensors.fromLongs(new long[]{1, 1}, 1, 2)}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Generator(model).generate(
                        CausalLmInput.ids(ids).mask(mask), List.of(Set.of()), GenerationConfig.greedy(4, -1), TokenListener.NONE));
                assertTrue(e.getMessage().contains("attention_mask must be [1, 3]"), e.getMessage());
            }
        }
    }

    @Test
    void streamingCallbackSeesEveryTokenInOrder() {
        try (BloomModel model = BloomModel.load(Reference.reference("ref-a").resolve("model"))) {
            List<Long> streamed = new ArrayList<>();
            GenerationResult r = new Generator(model).generate(List.of(new long[]{49, 584, 613}),
                    GenerationConfig.greedy(6, -1), (row, token) -> streamed.add(token));
            assertArrayEquals(r.row(0), streamed.stream().mapToLong(Long::longValue).toArray());
            assertEquals(6, streamed.size());
        }
    }

    static long[] longs(JsonArray a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).getAsLong();
        return out;
    }
}
