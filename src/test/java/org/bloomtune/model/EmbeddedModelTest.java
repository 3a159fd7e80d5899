package org.bloomtune.model;

import org.bloomtune.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The embedded default in models/bloom-tiny is exactly what `init-model --like tiny --dtype fp16 --seed 0` writes. */
class EmbeddedModelTest {
    static final Path EMBEDDED = Path.of("models/bloom-tiny");

    @Test
    void embeddedDefaultIsReproducibleFromItsSeed(@TempDir Path dir) throws IOException {
        RandomCheckpoint.write(ModelShapes.named("tiny"), dir, DType.F16, 0);
        for (String file : new String[]{"config.json", "generation_config.json", "model.safetensors"}) {
            assertArrayEquals(Files.readAllBytes(EMBEDDED.resolve(file)), Files.readAllBytes(dir.resolve(file)), file);
        }
        try (BloomModel model = BloomModel.load(EMBEDDED)) {
            assertEquals(ModelShapes.named("tiny"), model.config());
        }
    }
}
