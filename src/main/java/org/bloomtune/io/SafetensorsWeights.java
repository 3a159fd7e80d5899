package org.bloomtune.io;

import org.bloomtune.tensor.DType;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/** Weights in one memory-mapped safetensors file (several: {@link ShardedWeights}). */
public final class SafetensorsWeights implements WeightSource {
    private final SafetensorsFile file;

    private SafetensorsWeights(SafetensorsFile file) {
        this.file = file;
    }

    public static SafetensorsWeights single(Path file) {
        return new SafetensorsWeights(SafetensorsFile.open(file));
    }

    /** The file's {@code __metadata__}. */
    public Map<String, String> metadata() { return file.metadata(); }

    @Override
    public String description() { return file.path().toString(); }

    @Override
    public Set<String> names() { return file.names(); }

    @Override
    public long[] shape(String name) { return file.info(name).shape().clone(); }

    @Override
    public DType dtype(String name) { return file.info(name).dtype(); }

    @Override
    public Tensor get(String name) { return file.tensor(name); }

    @Override
    public void release(String name) { file.release(name); }

    @Override
    public boolean aliasesStorage() { return true; }

    @Override
    public void close() {
        file.close();
    }
}
