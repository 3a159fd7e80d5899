package org.bloomtune.peft;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Adapters PEFT wrote load; adapters BloomTune writes have PEFT's key, shape, dtype and config fields. */
class PeftAdapterTest {
    static final Path PEFT_TEXT = Reference.reference("hf/a/adapters/text");
    static final BloomConfig MODEL_A = BloomConfig.of(1024, 64, 4, 2);

    @TempDir
    Path dir;

    @Test
    void peftWrittenAdaptersLoad() {
        try (PeftAdapter.Loaded a = PeftAdapter.load(PEFT_TEXT, MODEL_A)) {
            assertEquals(5, a.config().numVirtualTokens());
            assertEquals(64, a.config().tokenDim());
            assertEquals(PromptInit.TEXT, a.config().init());
            assertEquals("Hi!", a.config().initText());
        }
        try (PeftAdapter.Loaded a = PeftAdapter.load(Reference.reference("ref-b/adapter"))) {
            assertEquals(6, a.prompt().numVirtualTokens());
            assertEquals(96, a.prompt().tokenDim());
        }
    }

    @Test
    void roundTripWritesWhatPeftWrites() throws IOException {
        Path out = dir.resolve("adapter");
        try (PeftAdapter.Loaded a = PeftAdapter.load(PEFT_TEXT, MODEL_A)) {
            PeftAdapter.save(out, a.config(), a.prompt());
            try (PeftAdapter.Loaded b = PeftAdapter.load(out, MODEL_A)) {
                assertEquals(a.config(), b.config());
                assertArrayEquals(Tensors.toFloats(a.prompt().weight()), Tensors.toFloats(b.prompt().weight()));
            }
        }
        try (SafetensorsFile ours = SafetensorsFile.open(out.resolve(PeftAdapter.WEIGHTS));
             SafetensorsFile peft = SafetensorsFile.open(PEFT_TEXT.resolve(PeftAdapter.WEIGHTS))) {
            assertEquals(peft.names(), ours.names());
            assertEquals(DType.F32, ours.info("prompt_embeddings").dtype());
            assertArrayEquals(peft.info("prompt_embeddings").shape(), ours.info("prompt_embeddings").shape());
            assertEquals(Map.of("format", "pt"), ours.metadata());
        }
        JsonObject ours = JsonParser.parseString(Files.readString(out.resolve(AdapterConfig.FILE))).getAsJsonObject();
        JsonObject peft = JsonParser.parseString(Files.readString(PEFT_TEXT.resolve(AdapterConfig.FILE))).getAsJsonObject();
        assertEquals(peft.keySet(), ours.keySet(), "adapter_config.json fields");
        for (String key : Set.of("peft_type", "task_type", "num_virtual_tokens", "token_dim", "prompt_tuning_init",
                "prompt_tuning_init_text", "num_layers", "num_attention_heads", "num_transformer_submodules", "inference_mode")) {
            assertEquals(peft.get(key), ours.get(key), key);
        }
    }

    @Test
    void savingReplacesAnExistingAdapterWhole() throws IOException {
        Path out = dir.resolve("adapter");
        try (SoftPrompt first = SoftPrompt.random(3, 64, 1); SoftPrompt second = SoftPrompt.random(7, 64, 2)) {
            PeftAdapter.save(out, AdapterConfig.forModel(MODEL_A, 3, PromptInit.RANDOM, null, "m"), first);
            PeftAdapter.save(out, AdapterConfig.forModel(MODEL_A, 7, PromptInit.RANDOM, null, "m"), second);
        }
        try (PeftAdapter.Loaded a = PeftAdapter.load(out, MODEL_A)) {
            assertEquals(7, a.prompt().numVirtualTokens());
        }
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "temporary directories left behind");
        }
    }

    @Test
    void malformedOrMismatchedAdaptersAreClearErrors() throws IOException {
        assertFails(copyWith(c -> c.addProperty("token_dim", 128), null), MODEL_A,
                "prompt_embeddings has shape [5, 64] but adapter_config.json says num_virtual_tokens=5, token_dim=128");
        assertFails(copyWith(c -> c.addProperty("peft_type", "LORA"), null), MODEL_A, "peft_type is LORA; BloomTune reads PROMPT_TUNING, P_TUNING and PREFIX_TUNING");
        assertFails(copyWith(c -> c.remove("num_virtual_tokens"), null), MODEL_A, "missing field num_virtual_tokens");
        assertFails(copyWith(null, "other_key"), MODEL_A, "no tensor 'prompt_embeddings'");
        assertFails(copyWith(null, null), BloomConfig.of(1024, 96, 6, 3), "token_dim 64 does not match the model's hidden size 96");
        assertFails(copyWith(c -> c.addProperty("num_virtual_tokens", 10.5), null), MODEL_A, "field num_virtual_tokens must be an integer, found 10.5");
        assertFails(copyWith(c -> c.add("num_virtual_tokens", new com.google.gson.JsonPrimitive(new java.math.BigInteger("9223372036854775808"))), null),
                MODEL_A, "field num_virtual_tokens is out of range: 9223372036854775808");
        assertFails(copyWith(c -> c.addProperty("num_virtual_tokens", 100000), null), MODEL_A, "num_virtual_tokens must lie in [1, 4096], got 100000");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertFails(empty, MODEL_A, "no adapter_config.json");
    }

    private Path copyWith(java.util.function.Consumer<JsonObject> editConfig, String renameKey) throws IOException {
        Path d = Files.createTempDirectory(dir, "adapter");
        JsonObject c = JsonParser.parseString(Files.readString(PEFT_TEXT.resolve(AdapterConfig.FILE))).getAsJsonObject();
        if (editConfig != null) editConfig.accept(c);
        Files.writeString(d.resolve(AdapterConfig.FILE), c.toString());
        if (renameKey == null) {
            Files.copy(PEFT_TEXT.resolve(PeftAdapter.WEIGHTS), d.resolve(PeftAdapter.WEIGHTS));
        } else {
            try (SafetensorsFile f = SafetensorsFile.open(PEFT_TEXT.resolve(PeftAdapter.WEIGHTS))) {
                SafetensorsWriter.write(d.resolve(PeftAdapter.WEIGHTS), Map.of(renameKey, f.copy("prompt_embeddings")));
            }
        }
        return d;
    }

    /** P-tuning and prefix directories: bad encoder fields, a wrong encoder file, a prefix for another depth, each named. */
    @Test
    void encoderFilesAndPrefixAdaptersAreCheckedByName() throws IOException {
        Path lstm = Reference.reference("hf-ptuning/a/ptuning-lstm/adapter");
        Path prefix = Reference.reference("hf-ptuning/a/prefix/adapter");
        assertFails(edited(lstm, c -> c.addProperty("encoder_reparameterization_type", "GRU"), null), MODEL_A,
                "encoder_reparameterization_type must be MLP or LSTM, got 'GRU'");
        assertFails(edited(lstm, c -> c.addProperty("encoder_hidden_size", 0), null), MODEL_A, "encoder_hidden_size must lie in [1, 65536], got 0");
        assertFails(edited(prefix, c -> c.addProperty("num_layers", 3), null), MODEL_A,
                "prompt_embeddings has shape [5, 256] but adapter_config.json says num_virtual_tokens=5, 2 · num_layers · token_dim=384");
        assertFails(edited(prefix, null, null), BloomConfig.of(1024, 64, 4, 3),
                "num_layers 2 does not match the model's 3 (a prefix holds every layer's keys and values)");
        Map<String, org.bytedeco.pytorch.Tensor> encoder = new java.util.LinkedHashMap<>();
        encoder.put("embedding.weight", org.bytedeco.pytorch.global.torch.zeros(5, 64));
        assertFails(edited(lstm, null, encoder), MODEL_A, "no tensor 'lstm_head.weight_ih_l0'");
        encoder.put("mlp_head.9.weight", org.bytedeco.pytorch.global.torch.zeros(2, 2));
        assertFails(edited(lstm, null, encoder), MODEL_A, "unexpected tensor 'mlp_head.9.weight'");
        encoder.clear();
        encoder.put("embedding.weight", org.bytedeco.pytorch.global.torch.zeros(5, 63));
        assertFails(edited(lstm, null, encoder), MODEL_A, "embedding.weight has shape [5, 63], the config's encoder needs [5, 64]");
    }

    /** A copy of {@code adapter} with its config edited and, when given, a prompt_encoder.safetensors of these tensors. */
    private Path edited(Path adapter, java.util.function.Consumer<JsonObject> editConfig, Map<String, org.bytedeco.pytorch.Tensor> encoder) throws IOException {
        Path d = Files.createTempDirectory(dir, "adapter");
        JsonObject c = JsonParser.parseString(Files.readString(adapter.resolve(AdapterConfig.FILE))).getAsJsonObject();
        if (editConfig != null) editConfig.accept(c);
        Files.writeString(d.resolve(AdapterConfig.FILE), c.toString());
        Files.copy(adapter.resolve(PeftAdapter.WEIGHTS), d.resolve(PeftAdapter.WEIGHTS));
        if (encoder != null) SafetensorsWriter.write(d.resolve(PeftAdapter.ENCODER), encoder);
        return d;
    }

    private static void assertFails(Path adapter, BloomConfig model, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PeftAdapter.load(adapter, model).close());
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
        assertTrue(e.getMessage().contains(adapter.toString()), "message does not name the adapter: " + e.getMessage());
    }
}
