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
 * An adapter directory as PEFT 0.10 reads and writes it, for prompt tuning, P-tuning and prefix
 * tuning: {@code adapter_config.json} and {@code adapter_model.safetensors} holding one F32 tensor
 * {@code prompt_embeddings} [N, width] — the prompt itself, for P-tuning and prefix tuning the
 * encoder's <em>output</em> (PEFT never saves the encoder). When the prompt comes from an encoder,
 * BloomTune also writes {@value #ENCODER}: the encoder's tensors (F32, PEFT's parameter names
 * without {@code prompt_encoder.default.}), which keep it trainable; PEFT ignores the file.
 */
public final class PeftAdapter {
    public static final String WEIGHTS = "adapter_model.safetensors";
    public static final String KEY = SoftPrompt.PROMPT_EMBEDDINGS;
    public static final String ENCODER = "prompt_encoder.safetensors";

    private PeftAdapter() {}

    /** A loaded adapter: its config and the prompt (which the caller owns and closes). */
    public record Loaded(AdapterConfig config, SoftPrompt prompt) implements AutoCloseable {
        @Override
        public void close() { prompt.close(); }
    }

    /** Loads {@code dir} for use with a model of shape {@code model}, checking they fit. */
    public static Loaded load(Path dir, BloomConfig model) {
        Loaded adapter = load(dir);
        AdapterConfig c = adapter.config();
        String mismatch = c.tokenDim() != model.hiddenSize() ? "token_dim " + c.tokenDim() + " does not match the model's hidden size " + model.hiddenSize()
                : c.peftType() == PeftType.PREFIX_TUNING && c.numLayers() != model.numLayers()
                ? "num_layers " + c.numLayers() + " does not match the model's " + model.numLayers() + " (a prefix holds every layer's keys and values)"
                : c.peftType() == PeftType.PREFIX_TUNING && c.numAttentionHeads() != model.numHeads()
                ? "num_attention_heads " + c.numAttentionHeads() + " does not match the model's " + model.numHeads() : null;
        if (mismatch != null) {
            adapter.close();
            throw new IllegalArgumentException(dir.resolve(AdapterConfig.FILE) + ": " + mismatch);
        }
        return adapter;
    }

    /**
     * Loads {@code dir} for inference: an encoder, when the directory has one, is run once and
     * folded into a plain prompt (what PEFT's own files hold), so no request pays for it.
     */
    public static Loaded loadFolded(Path dir, BloomConfig model) { return folded(load(dir, model)); }

    /** {@link #loadFolded(Path, BloomConfig)} without the model check. */
    public static Loaded loadFolded(Path dir) { return folded(load(dir)); }

    private static Loaded folded(Loaded live) {
        if (live.prompt().encoder() == null) return live;
        try (live) {
            return new Loaded(live.config(), live.prompt().fold());
        }
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
            long[] expected = {config.numVirtualTokens(), config.promptWidth()};
            if (!Arrays.equals(info.shape(), expected)) {
                throw new IllegalArgumentException(weights + ": " + KEY + " has shape " + Arrays.toString(info.shape())
                        + " but adapter_config.json says num_virtual_tokens=" + config.numVirtualTokens()
                        + (config.peftType() == PeftType.PREFIX_TUNING ? ", 2 · num_layers · token_dim=" : ", token_dim=") + config.promptWidth());
            }
            if (!info.dtype().isFloatingPoint()) {
                throw new IllegalArgumentException(weights + ": " + KEY + " has dtype " + info.dtype() + ", expected a float type");
            }
            Path encoderFile = dir.resolve(ENCODER);
            PromptEncoder encoder = PromptEncoder.of(config);
            if (encoder != null && Files.isRegularFile(encoderFile)) return new Loaded(config, loadEncoder(encoderFile, config, encoder.layout()));
            try (Tensor t = f.tensor(KEY)) {
                return new Loaded(config, SoftPrompt.of(config.peftType(), t));
            }
        }
    }

    /** The live encoder from {@value #ENCODER}, its tensors checked against the config's layout. */
    private static SoftPrompt loadEncoder(Path file, AdapterConfig config, ParameterLayout layout) {
        try (SafetensorsFile f = SafetensorsFile.open(file); org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            Map<String, Tensor> named = new java.util.LinkedHashMap<>();
            for (String name : f.names()) {
                if (!f.info(name).dtype().isFloatingPoint()) {
                    throw new IllegalArgumentException(file + ": " + name + " has dtype " + f.info(name).dtype() + ", expected a float type");
                }
                long[] needed = layout.shapeOf(name);            // checked before the data is read
                if (needed != null && !Arrays.equals(f.info(name).shape(), needed)) {
                    throw new IllegalArgumentException(file + ": " + name + " has shape " + Arrays.toString(f.info(name).shape())
                            + ", the config's encoder needs " + Arrays.toString(needed));
                }
                named.put(name, f.tensor(name));
            }
            return SoftPrompt.encoded(config, layout.pack(named, file.toString()));
        }
    }

    /**
     * Writes the adapter into {@code dir}, replacing it as a whole: the files are written to a
     * sibling temporary directory which is then renamed, so a crash never leaves a half adapter.
     */
    public static void save(Path dir, AdapterConfig config, SoftPrompt prompt) {
        if (prompt.type() != config.peftType() || prompt.numVirtualTokens() != config.numVirtualTokens() || prompt.tokenDim() != config.promptWidth()) {
            throw new IllegalArgumentException(prompt.type() + " prompt [" + prompt.numVirtualTokens() + ", " + prompt.tokenDim()
                    + "] does not match the config's " + config.peftType() + " [" + config.numVirtualTokens() + ", " + config.promptWidth() + "]");
        }
        Path target = dir.toAbsolutePath();
        try {
            Path tmp = AtomicFiles.newSiblingDirectory(target, "");
            try (Tensor values = prompt.snapshot()) {
                SafetensorsWriter.write(tmp.resolve(WEIGHTS), Map.of(KEY, values));
            }
            if (prompt.encoder() != null) {
                try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                    SafetensorsWriter.write(tmp.resolve(ENCODER), prompt.namedParameters());
                }
            }
            AtomicFiles.writeString(tmp.resolve(AdapterConfig.FILE), config.toJson());
            AtomicFiles.replaceDirectory(tmp, target);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write adapter " + dir + ": " + e.getMessage(), e);
        }
    }


}
