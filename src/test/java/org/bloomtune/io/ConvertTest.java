package org.bloomtune.io;

import com.google.gson.JsonObject;
import org.bloomtune.Reference;
import org.bloomtune.cli.Main;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** convert: a .bin with a separate tied lm_head becomes sharded safetensors transformers reads, tensor for tensor. */
class ConvertTest {
    static final Path BIN = Reference.reference("hf/a/model-bin");

    @TempDir
    Path dir;

    @Test
    void shardsWithAnIndexThatDescribesThemAndEveryTensorIntact() throws IOException {
        Path out = dir.resolve("converted");
        CheckpointConverter.Result r = CheckpointConverter.convert(BIN, out, null, 200_000);
        assertTrue(r.files().size() >= 3, r.files().toString());
        assertEquals("model-00001-of-0000" + r.files().size() + ".safetensors", r.files().getFirst());
        JsonObject index = Json.readObject(out.resolve("model.safetensors.index.json"));
        JsonObject weightMap = index.getAsJsonObject("weight_map");
        long total = 0;
        Set<String> seen = new HashSet<>();
        try (TorchBinWeights source = TorchBinWeights.read(BIN.resolve("pytorch_model.bin"))) {
            for (String file : r.files()) {
                try (SafetensorsFile f = SafetensorsFile.open(out.resolve(file))) {
                    assertEquals(Map.of("format", "pt"), f.metadata());
                    for (String name : f.names()) {
                        assertEquals(file, weightMap.get(name).getAsString(), name);
                        total += f.info(name).byteSize();
                        seen.add(name);
                        try (Tensor a = f.tensor(name); Tensor b = source.get(name)) {
                            assertArrayEquals(Tensors.toFloats(b), Tensors.toFloats(a), name);
                        }
                    }
                }
            }
            Set<String> expected = new HashSet<>(source.names());
            expected.remove("lm_head.weight");
            assertEquals(expected, seen, "every tensor once, the tied lm_head dropped");
        }
        assertEquals(weightMap.size(), seen.size());
        assertEquals(total, index.getAsJsonObject("metadata").get("total_size").getAsLong());
        assertEquals(total, r.bytes());
        Reference.assertSameLogits(out, Reference.reference("hf/a/model"));
        assertTrue(Files.exists(out.resolve("generation_config.json")));
    }

    @Test
    void storageDtypeAndTheCommandLine() throws IOException {
        Path half = dir.resolve("half");
        assertEquals(0, cli("convert", "--model", BIN.toString(), "--output", half.toString(), "--storage", "fp16"));
        try (SafetensorsFile f = SafetensorsFile.open(half.resolve("model.safetensors"))) {
            assertTrue(f.names().stream().allMatch(n -> f.info(n).dtype() == DType.F16));
            assertFalse(f.contains("lm_head.weight"));
        }
        assertEquals("float16", Json.readObject(half.resolve("config.json")).get("torch_dtype").getAsString());
        assertEquals(2, cli("convert", "--model", BIN.toString(), "--output", half.toString()), "an existing model is kept");
        assertEquals(0, cli("convert", "--model", BIN.toString(), "--output", half.toString(), "--dtype", "bf16", "--shard-size", "300kB", "--overwrite"));
        assertTrue(Files.exists(half.resolve("model.safetensors.index.json")) && !Files.exists(half.resolve("model.safetensors")));
        assertEquals(2, cli("convert", "--model", BIN.toString(), "--output", dir.resolve("x").toString(), "--shard-size", "two gigs"));
    }

    private static int cli(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        System.setOut(new PrintStream(new ByteArrayOutputStream()));
        System.setErr(new PrintStream(new ByteArrayOutputStream()));
        try {
            return Main.run(args);
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }
}
