package org.bloomtune.io;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.tensor.DType;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * A checkpoint split into shards by an index ({@code model.safetensors.index.json},
 * {@code pytorch_model.bin.index.json}): its {@code weight_map} names the shard of every tensor,
 * and each named tensor must be in its shard. The shards stay open (their tensors may alias them)
 * until {@link #close}.
 */
public final class ShardedWeights implements WeightSource {
    private final String description;
    private final List<WeightSource> shards;
    private final Map<String, WeightSource> byName;

    private ShardedWeights(String description, List<WeightSource> shards, Map<String, WeightSource> byName) {
        this.description = description;
        this.shards = shards;
        this.byName = byName;
    }

    /** Opens every shard {@code indexJson} names with {@code open} (safetensors or .bin). */
    public static ShardedWeights open(Path indexJson, Function<Path, WeightSource> open) {
        Map<String, String> weightMap = readWeightMap(indexJson);
        Path dir = indexJson.toAbsolutePath().getParent();
        Map<String, WeightSource> shards = new LinkedHashMap<>();
        Map<String, WeightSource> byName = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                WeightSource shard = shards.computeIfAbsent(e.getValue(), s -> open.apply(dir.resolve(s)));
                if (!shard.names().contains(e.getKey())) {
                    throw new IllegalArgumentException(indexJson + ": weight_map puts '" + e.getKey() + "' in " + e.getValue()
                            + ", which has no such tensor");
                }
                byName.put(e.getKey(), shard);
            }
        } catch (RuntimeException e) {
            shards.values().forEach(WeightSource::close);
            throw e;
        }
        return new ShardedWeights(indexJson.toString(), new ArrayList<>(shards.values()), byName);
    }

    /** The index's weight_map: tensor name → shard file name (a plain name in the same directory). */
    public static Map<String, String> readWeightMap(Path indexJson) {
        JsonObject root = Json.readObject(indexJson);
        JsonElement map = root.get("weight_map");
        if (map == null || !map.isJsonObject()) throw new IllegalArgumentException(indexJson + ": no weight_map object");
        if (map.getAsJsonObject().isEmpty()) throw new IllegalArgumentException(indexJson + ": weight_map is empty");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : map.getAsJsonObject().entrySet()) {
            JsonElement v = e.getValue();
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
                throw new IllegalArgumentException(indexJson + ": weight_map." + e.getKey() + " is not a file name");
            }
            String shard = v.getAsString();
            if (shard.isEmpty() || shard.contains("/") || shard.contains("\\") || shard.equals("..") || shard.equals(".")) {
                throw new IllegalArgumentException(indexJson + ": weight_map." + e.getKey()
                        + " names a file outside the checkpoint directory: '" + shard + "'");
            }
            out.put(e.getKey(), shard);
        }
        return out;
    }

    /** The shard file names, in the order the index first names them. */
    public static List<String> shardNames(Path indexJson) {
        return new ArrayList<>(new java.util.LinkedHashSet<>(readWeightMap(indexJson).values()));
    }

    @Override
    public String description() { return description; }

    @Override
    public Set<String> names() { return Collections.unmodifiableSet(byName.keySet()); }

    @Override
    public long[] shape(String name) { return shard(name).shape(name); }

    @Override
    public DType dtype(String name) { return shard(name).dtype(name); }

    @Override
    public Tensor get(String name) { return shard(name).get(name); }

    @Override
    public void release(String name) { shard(name).release(name); }

    @Override
    public boolean aliasesStorage() { return shards.stream().anyMatch(WeightSource::aliasesStorage); }

    private WeightSource shard(String name) {
        WeightSource s = byName.get(name);
        if (s == null) throw new IllegalArgumentException(description + ": no tensor named '" + name + "'");
        return s;
    }

    @Override
    public void close() {
        shards.forEach(WeightSource::close);
    }
}
