package org.bloomtune.demo;

import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.WeightNames;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.io.TorchBinWriter;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a seeded random BLOOM in HuggingFace layout ({@code config.json},
 * {@code model.safetensors} with {@code transformer.} keys and no lm_head, as
 * {@code save_pretrained} does, {@code generation_config.json}). Weights follow HF's
 * {@code _init_weights}: N(0, 0.02) for matrices and embeddings, zero biases, unit layer norms.
 */
public final class RandomCheckpoint {
    static {
        LibTorch.init();
    }

    static final double INITIALIZER_RANGE = 0.02;

    private RandomCheckpoint() {}

    public static void write(BloomConfig config, Path dir, DType storage, long seed) {
        write(config, dir, storage, seed, INITIALIZER_RANGE);
    }

    /** As {@link #write(BloomConfig, Path, DType, long)} with matrices drawn from N(0, std²). */
    public static void write(BloomConfig config, Path dir, DType storage, long seed, double std) {
        if (!(std > 0)) throw new IllegalArgumentException("init std must be positive, got " + std);
        if (!storage.isFloatingPoint() || storage == DType.F64) {
            throw new IllegalArgumentException("checkpoint dtype must be fp32, fp16 or bf16, got " + storage);
        }
        try (PointerScope scope = new PointerScope()) {
            Generator generator = torch.createCPUGenerator(seed);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (Map.Entry<String, long[]> e : WeightNames.expected(config).entrySet()) {
                tensors.put(WeightNames.PREFIX + e.getKey(), init(e.getKey(), e.getValue(), generator, std).to(storage.scalarType()));
            }
            SafetensorsWriter.write(dir.resolve(HfCheckpoint.SAFETENSORS), tensors);
        }
        JsonObject json = config.toJson();
        json.addProperty("torch_dtype", torchDtype(storage));
        json.addProperty("initializer_range", std);
        AtomicFiles.writeString(dir.resolve(HfCheckpoint.CONFIG), pretty(json));
        JsonObject generation = new JsonObject();
        generation.addProperty("bos_token_id", config.bosTokenId());
        generation.addProperty("eos_token_id", config.eosTokenId());
        generation.addProperty("pad_token_id", config.padTokenId());
        AtomicFiles.writeString(dir.resolve("generation_config.json"), pretty(generation));
    }

    /**
     * The same kind of checkpoint as a float32 {@code pytorch_model.bin} laid out as Langboat ships
     * bloom-1b4-zh: {@code transformer.}-prefixed names and {@code lm_head.weight} stored as a copy of
     * the embedding. Each tensor is drawn from a seed of its own when it is written, so a checkpoint
     * larger than memory can be made; zero tensors (biases) become holes in a sparse file.
     */
    public static void writeBin(BloomConfig config, Path dir, long seed) {
        TorchBinWriter w = new TorchBinWriter().folder("pytorch_model");
        Map<String, long[]> expected = WeightNames.expected(config);
        int index = 0;
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            String key = Integer.toString(index++);
            long[] shape = e.getValue();
            long numel = 1;
            for (long d : shape) numel *= d;
            boolean zeros = shape.length == 1 && !(e.getKey().endsWith("layernorm.weight") || e.getKey().equals("ln_f.weight"));
            long tensorSeed = seed * 1_000_003L + index;
            w.storage(key, DType.F32, numel, zeros ? null : () -> init(e.getKey(), shape, torch.createCPUGenerator(tensorSeed), INITIALIZER_RANGE));
            w.view(WeightNames.PREFIX + e.getKey(), key, 0, shape, contiguous(shape));
            if (e.getKey().equals(WeightNames.WORD_EMBEDDINGS)) {
                w.storage("lm_head", DType.F32, numel, () -> init(e.getKey(), shape, torch.createCPUGenerator(tensorSeed), INITIALIZER_RANGE));
                w.view(WeightNames.LM_HEAD, "lm_head", 0, shape, contiguous(shape));
            }
        }
        w.write(dir.resolve(HfCheckpoint.TORCH_BIN));
        JsonObject json = config.toJson();
        json.addProperty("torch_dtype", "float32");
        AtomicFiles.writeString(dir.resolve(HfCheckpoint.CONFIG), pretty(json));
    }

    private static long[] contiguous(long[] shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            stride[d] = s;
            s *= shape[d];
        }
        return stride;
    }

    private static Tensor init(String name, long[] shape, Generator generator, double std) {
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        boolean matrix = shape.length == 2;
        if (matrix) return torch.randn(shape, new GeneratorOptional(generator), f32).mul_(new org.bytedeco.pytorch.Scalar(std));
        boolean layerNormWeight = name.endsWith("layernorm.weight") || name.equals("ln_f.weight");
        return layerNormWeight ? torch.ones(shape, f32) : torch.zeros(shape, f32);
    }

    private static String torchDtype(DType d) {
        return switch (d) {
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> "float32";
        };
    }

    private static String pretty(JsonObject o) {
        return new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n";
    }
}
