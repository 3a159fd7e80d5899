package org.bloomtune.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import org.bloomtune.tensor.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Rewrites a HuggingFace checkpoint — safetensors, sharded safetensors, {@code pytorch_model.bin}
 * or sharded .bin — as safetensors in the layout transformers' {@code save_pretrained} writes: one
 * entry per tensor name, {@code {"format": "pt"}} metadata, {@code model.safetensors}, or past the
 * shard size {@code model-00001-of-0000N.safetensors} with a {@code model.safetensors.index.json}
 * whose {@code metadata.total_size} and {@code weight_map} describe them. A tied
 * {@code lm_head.weight} (stored separately in some .bin files) is dropped, as transformers does
 * when it saves a tied model. The config (its {@code torch_dtype} updated), tokenizer and generation
 * files come along. The output directory appears whole: it is built beside the target and renamed.
 */
public final class CheckpointConverter {
    public static final long DEFAULT_SHARD_BYTES = 2_000_000_000L;
    private static final List<String> COPIED = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "generation_config.json");
    private static final String LM_HEAD = "lm_head.weight";

    private CheckpointConverter() {}

    /** What was written: the tensor files, and how many tensors and bytes they hold. */
    public record Result(List<String> files, int tensors, long bytes) {}

    /**
     * @param dtype      the stored dtype of floating-point tensors, or null to keep each tensor's own
     * @param shardBytes the largest shard (a tensor larger than that gets a shard of its own)
     */
    public static Result convert(Path source, Path target, DType dtype, long shardBytes) {
        if (shardBytes < 1) throw new IllegalArgumentException("shard size must be positive, got " + shardBytes);
        if (dtype != null && !dtype.isFloatingPoint()) throw new IllegalArgumentException("dtype must be fp32, fp16, bf16 or fp64, got " + dtype);
        JsonObject config = Json.readObject(HfCheckpoint.config(source));
        boolean tied = Json.bool(config, "tie_word_embeddings", true);
        try (WeightSource weights = HfCheckpoint.openWeights(source)) {
            List<String> names = new ArrayList<>();
            for (String n : weights.names()) if (!(tied && n.equals(LM_HEAD))) names.add(n);
            List<List<String>> shards = shards(weights, names, dtype, shardBytes);
            Path tmp = newDirectory(target);
            try {
                List<String> files = writeShards(weights, shards, dtype, tmp);
                long total = 0;
                for (String n : names) total += bytes(weights, n, dtype);
                if (files.size() > 1) index(tmp, shards, files, total);
                if (dtype != null) config.addProperty("torch_dtype", torchName(dtype));
                AtomicFiles.writeString(tmp.resolve(HfCheckpoint.CONFIG), new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(config) + "\n");
                for (String f : COPIED) if (Files.isRegularFile(source.resolve(f))) Files.copy(source.resolve(f), tmp.resolve(f));
                AtomicFiles.replaceDirectory(tmp, target.toAbsolutePath());
                return new Result(files, names.size(), total);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + target + ": " + e.getMessage(), e);
            } catch (RuntimeException e) {
                try {
                    if (Files.exists(tmp)) AtomicFiles.deleteTree(tmp);
                } catch (IOException ignored) {
                    // the original error is the one to report
                }
                throw e;
            }
        }
    }

    private static Path newDirectory(Path target) {
        try {
            return AtomicFiles.newSiblingDirectory(target.toAbsolutePath(), "");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write beside " + target + ": " + e.getMessage(), e);
        }
    }

    /** Tensors in file order, a new shard whenever the next one would overflow the current (as transformers splits). */
    private static List<List<String>> shards(WeightSource w, List<String> names, DType dtype, long shardBytes) {
        List<List<String>> out = new ArrayList<>();
        List<String> current = new ArrayList<>();
        long size = 0;
        for (String n : names) {
            long b = bytes(w, n, dtype);
            if (!current.isEmpty() && size + b > shardBytes) {
                out.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(n);
            size += b;
        }
        if (!current.isEmpty()) out.add(current);
        return out;
    }

    private static List<String> writeShards(WeightSource w, List<List<String>> shards, DType dtype, Path dir) {
        List<String> files = new ArrayList<>();
        for (int i = 0; i < shards.size(); i++) {
            String file = shards.size() == 1 ? HfCheckpoint.SAFETENSORS : String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            try (PointerScope scope = new PointerScope()) {
                Map<String, Tensor> tensors = new LinkedHashMap<>();
                for (String n : shards.get(i)) {
                    Tensor t = w.get(n);
                    tensors.put(n, dtype != null && DType.of(t.scalar_type()).isFloatingPoint() ? t.to(dtype.scalarType()) : t.contiguous());
                }
                SafetensorsWriter.write(dir.resolve(file), tensors);
            }
            for (String n : shards.get(i)) w.release(n);
            files.add(file);
        }
        return files;
    }

    private static void index(Path dir, List<List<String>> shards, List<String> files, long total) {
        JsonObject metadata = new JsonObject();
        metadata.addProperty("total_size", total);
        JsonObject map = new JsonObject();
        Map<String, String> sorted = new TreeMap<>();
        for (int i = 0; i < shards.size(); i++) for (String n : shards.get(i)) sorted.put(n, files.get(i));
        sorted.forEach(map::addProperty);
        JsonObject index = new JsonObject();
        index.add("metadata", metadata);
        index.add("weight_map", map);
        AtomicFiles.writeString(dir.resolve(HfCheckpoint.SAFETENSORS_INDEX), new GsonBuilder().setPrettyPrinting().create().toJson(index) + "\n");
    }

    private static long bytes(WeightSource w, String name, DType dtype) {
        long numel = 1;
        for (long d : w.shape(name)) numel = Math.multiplyExact(numel, d);
        DType own = w.dtype(name);
        return numel * (dtype != null && own.isFloatingPoint() ? dtype.byteSize() : own.byteSize());
    }

    private static String torchName(DType d) {
        return switch (d) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case F64 -> "float64";
            default -> throw new IllegalArgumentException("not a float dtype: " + d);
        };
    }
}
