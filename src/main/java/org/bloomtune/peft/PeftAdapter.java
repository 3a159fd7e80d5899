package org.bloomtune.peft;

import org.bloomtune.io.AtomicFiles;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.io.TensorInfo;
import org.bloomtune.model.BloomConfig;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A prompt-tuning adapter directory as PEFT reads and writes it: {@code adapter_config.json} and
 * {@code adapter_model.safetensors} holding one F32 tensor {@code prompt_embeddings} [N, token_dim].
 */
public final class PeftAdapter {
    public static final String WEIGHTS = "adapter_model.safetensors";
    public static final String KEY = "prompt_embeddings";

    private PeftAdapter() {}

    /** A loaded adapter: its config and the prompt (which the caller owns and closes). */
    public record Loaded(AdapterConfig config, SoftPrompt prompt) implements AutoCloseable {
        @Override
        public void close() { prompt.close(); }
    }

    /** Loads {@code dir} for use with a model of shape {@code model}, checking they fit. */
    public static Loaded load(Path dir, BloomConfig model) {
        Loaded adapter = load(dir);
        if (adapter.config().tokenDim() != model.hiddenSize()) {
            adapter.close();
            throw new IllegalArgumentException(dir.resolve(AdapterConfig.FILE) + ": token_dim " + adapter.config().tokenDim()
                    + " does not match the model's hidden size " + model.hiddenSize());
        }
        return adapter;
    }

    public static Loaded load(Path dir) {
        Path configFile = dir.resolve(AdapterConfig.FILE);
        Path weights = dir.resolve(WEIGHTS);
        if (!Files.isRegularFile(configFile)) throw new IllegalArgumentException(dir + ": no " + AdapterConfig.FILE);
        if (!Files.isRegularFile(weights)) throw new IllegalArgumentException(dir + ": no " + WEIGHTS);
        AdapterConfig config = AdapterConfig.read(configFile);
        try (SafetensorsFile f = SafetensorsFile.open(weights)) {
            if (!f.contains(KEY)) {
                throw new IllegalArgumentException(weights + ": no tensor '" + KEY + "' (has " + f.names() + ")");
            }
            TensorInfo info = f.info(KEY);
            long[] expected = {config.numVirtualTokens(), config.tokenDim()};
            if (!Arrays.equals(info.shape(), expected)) {
                throw new IllegalArgumentException(weights + ": " + KEY + " has shape " + Arrays.toString(info.shape())
                        + " but adapter_config.json says num_virtual_tokens=" + config.numVirtualTokens()
                        + ", token_dim=" + config.tokenDim());
            }
            if (!info.dtype().isFloatingPoint()) {
                throw new IllegalArgumentException(weights + ": " + KEY + " has dtype " + info.dtype() + ", expected a float type");
            }
            try (Tensor t = f.tensor(KEY)) {
                return new Loaded(config, SoftPrompt.of(t));
            }
        }
    }

    /**
     * Writes the adapter into {@code dir}, replacing it as a whole: the files are written to a
     * sibling temporary directory which is then renamed, so a crash never leaves a half adapter.
     */
    public static void save(Path dir, AdapterConfig config, SoftPrompt prompt) {
        if (prompt.numVirtualTokens() != config.numVirtualTokens() || prompt.tokenDim() != config.tokenDim()) {
            throw new IllegalArgumentException("prompt [" + prompt.numVirtualTokens() + ", " + prompt.tokenDim()
                    + "] does not match the config's num_virtual_tokens/token_dim");
        }
        Path target = dir.toAbsolutePath();
        try {
            Path tmp = AtomicFiles.newSiblingDirectory(target, "");
            try (Tensor values = prompt.snapshot()) {
                SafetensorsWriter.write(tmp.resolve(WEIGHTS), Map.of(KEY, values));
            }
            AtomicFiles.writeString(tmp.resolve(AdapterConfig.FILE), config.toJson());
            AtomicFiles.replaceDirectory(tmp, target);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write adapter " + dir + ": " + e.getMessage(), e);
        }
    }


}
