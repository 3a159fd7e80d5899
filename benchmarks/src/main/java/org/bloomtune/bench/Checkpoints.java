package org.bloomtune.bench;

import org.bloomtune.model.ModelShapes;
import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.tensor.DType;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Seeded random checkpoints of the named shapes, written once (fp16, as bigscience ships them) to
 * {@code target/bench-models/NAME} and reused by every benchmark fork.
 */
final class Checkpoints {
    private Checkpoints() {}

    static synchronized Path random(String shape) {
        Path dir = Path.of(System.getProperty("bloomtune.bench.models", "target/bench-models")).resolve(shape);
        if (!Files.isRegularFile(dir.resolve("model.safetensors"))) {
            RandomCheckpoint.write(ModelShapes.named(shape), dir, DType.F16, 0);
        }
        return dir;
    }
}
