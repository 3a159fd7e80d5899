package org.bloomtune.peft;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Greedy generation with the soft prompt in the KV cache equals PEFT's generate and the float64 reference. */
class PromptedGenerationTest {

    @ParameterizedTest
    @CsvSource({"a,random", "a,text", "b,random", "b,text"})
    void matchesPeftGenerate(String set, String adapter) {
        Path dir = Reference.reference("hf").resolve(set);
        Map<String, Tensor> g = Reference.read(dir.resolve("goldens.safetensors"));
        try (BloomModel model = BloomModel.load(dir.resolve("model"));
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapters").resolve(adapter), model.config())) {
            for (String c : new String[]{"single", "lp"}) {
                List<long[]> prompts = Reference.unpad(g.get("gen." + c + ".input_ids"), g.get("gen." + c + ".attention_mask"));
                GenerationResult r = PromptedGeneration.generate(model, a.prompt(), prompts,
                        GenerationConfig.greedy(8, -1), TokenListener.NONE);
                Tensor sequences = g.get("gen.pt_" + adapter + "." + c + ".sequences");
                long[] all = Tensors.toLongs(sequences);
                int width = (int) sequences.size(1);
                for (int b = 0; b < prompts.size(); b++) {
                    long[] expected = new long[8];
                    System.arraycopy(all, b * width + width - 8, expected, 0, 8);
                    assertArrayEquals(expected, r.row(b), set + "/" + adapter + " " + c + " row " + b);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ref-a", "ref-b"})
    void matchesFloat64ReferenceGreedy(String set) throws IOException {
        Path dir = Reference.reference(set);
        JsonObject cases = JsonParser.parseString(Files.readString(dir.resolve("cases.json"))).getAsJsonObject();
        long[] start = cases.getAsJsonArray("start_ids").asList().stream().mapToLong(e -> e.getAsLong()).toArray();
        long[] expected = cases.getAsJsonObject("greedy_10").getAsJsonArray("prompt").asList().stream()
                .mapToLong(e -> e.getAsLong()).toArray();
        try (BloomModel model = BloomModel.load(dir.resolve("model"));
             PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("adapter"), model.config())) {
            GenerationResult r = PromptedGeneration.generate(model, a.prompt(), List.of(start),
                    GenerationConfig.greedy(10, -1), TokenListener.NONE);
            assertArrayEquals(expected, r.row(0));
        }
    }
}
