package org.bloomtune.io;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the weights of a HuggingFace model directory, in the order transformers prefers them: safetensors, sharded safetensors, .bin, sharded .bin. */
public final class HfCheckpoint {
    public static final String CONFIG = "config.json";
    public static final String SAFETENSORS = "model.safetensors";
    public static final String SAFETENSORS_INDEX = "model.safetensors.index.json";
    public static final String TORCH_BIN = "pytorch_model.bin";
    public static final String TORCH_BIN_INDEX = "pytorch_model.bin.index.json";

    private HfCheckpoint() {}

    public static Path config(Path dir) {
        Path config = dir.resolve(CONFIG);
        if (!Files.isRegularFile(config)) {
            throw new IllegalArgumentException(dir + ": no " + CONFIG + " (is this a HuggingFace model directory?)");
        }
        return config;
    }

    public static WeightSource openWeights(Path dir) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a directory");
        if (Files.isRegularFile(dir.resolve(SAFETENSORS))) return SafetensorsWeights.single(dir.resolve(SAFETENSORS));
        if (Files.isRegularFile(dir.resolve(SAFETENSORS_INDEX))) return ShardedWeights.open(dir.resolve(SAFETENSORS_INDEX), SafetensorsWeights::single);
        if (Files.isRegularFile(dir.resolve(TORCH_BIN))) return TorchBinWeights.read(dir.resolve(TORCH_BIN));
        if (Files.isRegularFile(dir.resolve(TORCH_BIN_INDEX))) return ShardedWeights.open(dir.resolve(TORCH_BIN_INDEX), TorchBinWeights::read);
        throw new IllegalArgumentException(dir + ": no " + SAFETENSORS + ", " + SAFETENSORS_INDEX + ", " + TORCH_BIN + " or " + TORCH_BIN_INDEX);
    }
}
