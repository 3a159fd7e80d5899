package org.bloomtune.io;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Weights in one or several memory-mapped safetensors files (HF sharding with an index). */
public final class SafetensorsWeights implements WeightSource {
    private final String description;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byName;

    private SafetensorsWeights(String description, List<SafetensorsFile> files, Map<String, SafetensorsFile> byName) {
        this.description = description;
        this.files = files;
        this.byName = byName;
    }

    public static SafetensorsWeights single(Path file) {
        SafetensorsFile f = SafetensorsFile.open(file);
        Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
        for (String n : f.names()) byName.put(n, f);
        return new SafetensorsWeights(file.toString(), List.of(f), byName);
    }

    /**
     * Shards listed by a {@code model.safetensors.index.json}; every name in its weight_map must be
     * in the shard it names.
     */
    public static SafetensorsWeights sharded(Path indexJson) {
        Map<String, String> weightMap = readWeightMap(indexJson);
        Path dir = indexJson.toAbsolutePath().getParent();
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile shard = shards.computeIfAbsent(e.getValue(), s -> SafetensorsFile.open(dir.resolve(s)));
                if (!shard.contains(e.getKey())) {
                    throw new IllegalArgumentException(indexJson + ": weight_map puts '" + e.getKey()
                            + "' in " + e.getValue() + ", which has no such tensor");
                }
                byName.put(e.getKey(), shard);
            }
        } catch (RuntimeException e) {
            shards.values().forEach(SafetensorsFile::close);
            throw e;
        }
        return new SafetensorsWeights(indexJson.toString(), new ArrayList<>(shards.values()), byName);
    }

    static Map<String, String> readWeightMap(Path indexJson) {
        JsonObject root = Json.readObject(indexJson);
        JsonElement map = root.get("weight_map");
        if (map == null || !map.isJsonObject()) throw new IllegalArgumentException(indexJson + ": no weight_map object");
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

    /** The metadata of the first file (all shards carry the same). */
    public Map<String, String> metadata() { return files.getFirst().metadata(); }

    @Override
    public String description() { return description; }

    @Override
    public Set<String> names() { return Collections.unmodifiableSet(byName.keySet()); }

    @Override
    public long[] shape(String name) { return file(name).info(name).shape().clone(); }

    @Override
    public Tensor get(String name) { return file(name).tensor(name); }

    @Override
    public void release(String name) { file(name).release(name); }

    @Override
    public boolean aliasesStorage() { return true; }

    private SafetensorsFile file(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) throw new IllegalArgumentException(description + ": no tensor named '" + name + "'");
        return f;
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
