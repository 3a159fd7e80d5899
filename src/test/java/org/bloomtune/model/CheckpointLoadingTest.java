package org.bloomtune.model;

import org.bloomtune.demo.RandomCheckpoint;

import org.bloomtune.Reference;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** HF directory layouts that must load, and broken ones that must fail with a message naming the problem. */
class CheckpointLoadingTest {
    static final Path HF_A = Reference.reference("hf/a/model");
    static final long[] IDS = {5, 17, 300, 9, 1000, 42};

    @TempDir
    Path dir;

    @Test
    void shardedSafetensorsWithIndexGiveTheSameLogits() throws IOException {
        Path sharded = dir.resolve("sharded");
        Files.createDirectories(sharded);
        Files.copy(HF_A.resolve("config.json"), sharded.resolve("config.json"));
        Map<String, Tensor> first = new LinkedHashMap<>();
        Map<String, Tensor> second = new LinkedHashMap<>();
        StringBuilder index = new StringBuilder("{\"metadata\":{\"total_size\":0},\"weight_map\":{");
        try (SafetensorsFile f = SafetensorsFile.open(HF_A.resolve("model.safetensors"))) {
            for (String n : f.names()) {
                boolean one = n.contains(".h.0.") || n.contains("word_embeddings");
                (one ? first : second).put(n, f.copy(n));
                String shard = one ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
                index.append('"').append(n).append("\":\"").append(shard).append("\",");
            }
        }
        index.setLength(index.length() - 1);
        index.append("}}");
        SafetensorsWriter.write(sharded.resolve("model-00001-of-00002.safetensors"), first);
        SafetensorsWriter.write(sharded.resolve("model-00002-of-00002.safetensors"), second);
        Files.writeString(sharded.resolve(HfCheckpoint.SAFETENSORS_INDEX), index);
        try (BloomModel a = BloomModel.load(HF_A); BloomModel b = BloomModel.load(sharded)) {
            assertTrue(Reference.maxAbsDiff(logits(a), logits(b)) == 0.0);
        }
    }

    @Test
    void fp32FileLoadsWithoutCopyAndHalfFilesConvert() {
        try (BloomModel model = BloomModel.load(HF_A)) {
            assertTrue(model.viewsMappedFile(), "fp32 weights should be views of the mapping");
        }
        Path half = dir.resolve("half");
        RandomCheckpoint.write(BloomConfig.of(64, 32, 4, 2), half, DType.F16, 1);
        try (BloomModel fp32 = BloomModel.load(half); BloomModel bf16 = BloomModel.load(half, LoadOptions.defaults().withDtype(DType.BF16))) {
            assertFalse(fp32.viewsMappedFile(), "converted weights must not keep the mapping");
            double err = Reference.maxAbsDiff(logits(fp32), logits(bf16));
            assertTrue(err < 0.05 * Math.max(1, Reference.maxAbs(logits(fp32))), "bf16 vs fp32 error " + err);
        }
    }

    @Test
    void missingWeightIsNamed() throws IOException {
        Path broken = rewrite(w -> w.remove("transformer.h.1.mlp.dense_4h_to_h.bias").close());
        assertFails(broken, "missing 1 weight(s): transformer.h.1.mlp.dense_4h_to_h.bias");
    }

    @Test
    void unexpectedWeightIsNamed() throws IOException {
        Path broken = rewrite(w -> w.put("transformer.h.2.input_layernorm.weight", Tensors.fromFloats(new float[64], 64)));
        assertFails(broken, "unexpected weight(s) for a BLOOM with 2 layers: transformer.h.2.input_layernorm.weight");
    }

    @Test
    void shapeDisagreeingWithConfigIsNamed() throws IOException {
        Path broken = rewrite(w -> w.put("transformer.ln_f.bias", Tensors.fromFloats(new float[63], 63)));
        assertFails(broken, "transformer.ln_f.bias has shape [63] but config.json implies [64]");
    }

    @Test
    void configProblemsNameTheField() throws IOException {
        assertFails(withConfig("{\"vocab_size\": 1024, \"hidden_size\": 64, \"n_layer\": 2}"), "missing field n_head");
        assertFails(withConfig("{\"vocab_size\": 1024, \"hidden_size\": 64, \"n_head\": 5, \"n_layer\": 2}"),
                "hidden_size 64 is not divisible by n_head 5");
        assertFails(withConfig("{\"vocab_size\": \"big\", \"hidden_size\": 64, \"n_head\": 4, \"n_layer\": 2}"),
                "field vocab_size must be an integer, found a string");
        assertFails(withConfig("{\"vocab_size\": 1024, "), "config.json: invalid JSON at column");
        assertFails(withConfig("{\"model_type\": \"gpt2\", \"vocab_size\": 1024, \"hidden_size\": 64, \"n_head\": 4, \"n_layer\": 2}"),
                "model_type is 'gpt2'");
    }

    @Test
    void aliasesOfConfigFieldsAreRead() throws IOException {
        Path d = withConfig("{\"vocab_size\": 1024, \"n_embed\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"extra_field\": [1]}");
        try (BloomModel model = BloomModel.load(d)) {
            assertTrue(model.config().hiddenSize() == 64 && model.config().numHeads() == 4);
        }
    }

    @Test
    void corruptTorchBinAndMissingWeightsAreClearErrors() throws IOException {
        Path bin = dir.resolve("bin");
        Files.createDirectories(bin);
        Files.copy(HF_A.resolve("config.json"), bin.resolve("config.json"));
        assertFails(bin, "no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json");
        Files.write(bin.resolve("pytorch_model.bin"), "not a zip at all".getBytes());
        assertFails(bin, "pytorch_model.bin: file of 16 bytes is too short for a zip");
        assertFails(dir.resolve("nowhere"), "no config.json");
    }

    private static Tensor logits(BloomModel m) {
        long[] ids = new long[IDS.length];
        for (int i = 0; i < ids.length; i++) ids[i] = IDS[i] % m.config().vocabSize();
        try (Tensor in = Tensors.fromLongs(ids, 1, ids.length); CausalLmOutput out = m.forward(CausalLmInput.ids(in))) {
            return out.logits().clone();
        }
    }

    private Path rewrite(Consumer<Map<String, Tensor>> edit) throws IOException {
        Path d = Files.createTempDirectory(dir, "ckpt");
        Files.copy(HF_A.resolve("config.json"), d.resolve("config.json"));
        Map<String, Tensor> weights = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(HF_A.resolve("model.safetensors"))) {
            for (String n : f.names()) weights.put(n, f.copy(n));
        }
        edit.accept(weights);
        SafetensorsWriter.write(d.resolve("model.safetensors"), weights);
        return d;
    }

    private Path withConfig(String json) throws IOException {
        Path d = Files.createTempDirectory(dir, "cfg");
        Files.writeString(d.resolve("config.json"), json);
        Files.copy(HF_A.resolve("model.safetensors"), d.resolve("model.safetensors"));
        return d;
    }

    private static void assertFails(Path modelDir, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BloomModel.load(modelDir).close());
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }
}
