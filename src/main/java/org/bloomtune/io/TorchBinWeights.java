package org.bloomtune.io;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.GenericDict;
import org.bytedeco.pytorch.GenericDictIterator;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A {@code pytorch_model.bin} ({@code torch.save} zip of a state dict) read through libtorch's own
 * pickle loader. The loader needs the whole file in memory, so loading costs about twice the
 * file's size at the peak; convert large checkpoints to safetensors once to avoid that.
 */
public final class TorchBinWeights implements WeightSource {
    private final String description;
    private final Map<String, Tensor> tensors;

    private TorchBinWeights(String description, Map<String, Tensor> tensors) {
        this.description = description;
        this.tensors = tensors;
    }

    public static TorchBinWeights read(Path file) {
        byte[] bytes = readAll(file);
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (ByteVector buffer = new ByteVector(bytes)) {
            IValue root = loadPickle(file, buffer);
            try (root) {
                if (!root.isGenericDict()) throw new IllegalArgumentException(file + ": not a pickled dict of tensors");
                collect(file, root.toGenericDict(), out);
            }
        } catch (RuntimeException e) {
            out.values().forEach(Tensor::close);
            throw e;
        }
        return new TorchBinWeights(file.toString(), out);
    }

    private static byte[] readAll(Path file) {
        try {
            long size = Files.size(file);
            if (size > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException(file + ": " + size + " bytes is too large for libtorch's "
                        + "pickle loader from the JVM (limit 2 GiB); convert it to safetensors");
            }
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static IValue loadPickle(Path file, ByteVector buffer) {
        try {
            return torch.pickle_load(buffer);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + ": not a torch.save file libtorch can read ("
                    + firstLine(e.getMessage()) + ")", e);
        }
    }

    // Tensors are cloned out of the dict: the dict owns the unpickled storages and goes away.
    private static void collect(Path file, GenericDict dict, Map<String, Tensor> out) {
        GenericDictIterator it = dict.begin();
        GenericDictIterator end = dict.end();
        for (; !it.equals(end); it = it.increment()) {
            IValue key = it.access().key();
            IValue value = it.access().value();
            if (!key.isString()) throw new IllegalArgumentException(file + ": a state dict key is not a string");
            String name = key.toStringRef().getString();
            if (!value.isTensor()) throw new IllegalArgumentException(file + ": entry '" + name + "' is not a tensor");
            try (Tensor t = value.toTensor()) {
                out.put(name, t.clone());
            }
        }
    }

    private static String firstLine(String message) {
        if (message == null) return "unknown error";
        int nl = message.indexOf('\n');
        return nl < 0 ? message : message.substring(0, nl);
    }

    @Override
    public String description() { return description; }

    @Override
    public Set<String> names() { return Collections.unmodifiableSet(tensors.keySet()); }

    @Override
    public long[] shape(String name) { return Tensors.shape(tensor(name)); }

    @Override
    public Tensor get(String name) {
        // A new handle to the same storage, so the caller may close it independently.
        return tensor(name).alias();
    }

    @Override
    public boolean aliasesStorage() { return false; }

    private Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException(description + ": no tensor named '" + name + "'");
        return t;
    }

    @Override
    public void close() {
        tensors.values().forEach(Tensor::close);
        tensors.clear();
    }
}
