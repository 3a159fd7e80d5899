package org.bloomtune.io;

import org.bloomtune.io.RestrictedUnpickler.StorageRef;
import org.bloomtune.io.RestrictedUnpickler.TensorRef;
import org.bloomtune.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The state dict in a {@code torch.save} zip: {@code <folder>/data.pkl} (the pickle, read by
 * {@link RestrictedUnpickler}), {@code <folder>/data/<key>} (one entry per storage),
 * {@code <folder>/byteorder} and {@code <folder>/version}. The folder is whatever the entries share
 * ({@code archive/} from older torch, the file's own name from newer). Each tensor becomes a
 * {@link TensorView}: its bytes in the mapping, checked to lie inside its storage.
 */
public final class TorchArchive {
    /** A tensor: dtype, shape and strides (in elements), and the bytes from its first element to its last. */
    public record TensorView(DType dtype, long[] shape, long[] stride, MemorySegment bytes, MemorySegment storageBytes) {}

    private final Map<String, TensorView> tensors;

    private TorchArchive(Map<String, TensorView> tensors) {
        this.tensors = tensors;
    }

    public Map<String, TensorView> tensors() { return tensors; }

    /** Reads the state dict of the zip mapped in {@code data}; the views point into {@code data}. */
    public static TorchArchive read(Path file, MemorySegment data) {
        ZipDirectory zip = ZipDirectory.read(file, data);
        String folder = folder(file, zip);
        ZipDirectory.Entry order = zip.entries().get(folder + "byteorder");
        if (order != null && !text(data, order).strip().equals("little")) {
            throw ZipDirectory.bad(file, "byteorder is '" + text(data, order).strip() + "'; only little-endian files are supported");
        }
        ZipDirectory.Entry pkl = zip.entry(folder + "data.pkl");
        Object root = RestrictedUnpickler.load(file, data.asSlice(pkl.dataOffset(), pkl.size()));
        if (!(root instanceof Map<?, ?> dict)) throw ZipDirectory.bad(file, "data.pkl holds no dict of tensors (a whole pickled model is not read)");
        Map<String, TensorView> tensors = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            String name = (String) e.getKey();
            if (!(e.getValue() instanceof TensorRef t)) throw ZipDirectory.bad(file, "entry '" + name + "' of the state dict is not a tensor");
            tensors.put(name, view(file, data, zip, folder, name, t));
        }
        return new TorchArchive(java.util.Collections.unmodifiableMap(tensors));
    }

    private static TensorView view(Path file, MemorySegment data, ZipDirectory zip, String folder, String name, TensorRef t) {
        StorageRef s = t.storage();
        ZipDirectory.Entry entry = zip.entries().get(folder + "data/" + s.key());
        if (entry == null) throw ZipDirectory.bad(file, "tensor '" + name + "' refers to storage " + s.key() + ", which the zip lacks (" + folder + "data/" + s.key() + ")");
        long item = s.dtype().byteSize();
        long storageBytes;
        try {
            storageBytes = Math.multiplyExact(s.numel(), item);
        } catch (ArithmeticException e) {
            throw ZipDirectory.bad(file, "storage " + s.key() + " claims " + s.numel() + " elements");
        }
        if (entry.size() < storageBytes) {
            throw ZipDirectory.bad(file, "storage " + s.key() + " holds " + entry.size() + " bytes, fewer than its " + s.numel() + " "
                    + s.dtype() + " elements need (truncated?)");
        }
        long extent = extent(file, name, t);
        if (extent > 0 && (t.offset() > s.numel() || extent > s.numel() - t.offset())) {
            throw ZipDirectory.bad(file, "tensor '" + name + "' " + Arrays.toString(t.shape()) + " at offset " + t.offset() + " with strides "
                    + Arrays.toString(t.stride()) + " reaches past the end of its storage of " + s.numel() + " elements");
        }
        MemorySegment storage = data.asSlice(entry.dataOffset(), storageBytes);
        MemorySegment bytes = extent == 0 ? storage.asSlice(0, 0) : storage.asSlice(t.offset() * item, extent * item);
        return new TensorView(s.dtype(), t.shape(), t.stride(), bytes, storage);
    }

    /** Elements from the first to the last one the view touches (0 for an empty tensor). */
    private static long extent(Path file, String name, TensorRef t) {
        try {
            long last = 0;
            for (int d = 0; d < t.shape().length; d++) {
                if (t.shape()[d] == 0) return 0;
                last = Math.addExact(last, Math.multiplyExact(t.shape()[d] - 1, t.stride()[d]));
            }
            return last + 1;
        } catch (ArithmeticException e) {
            throw ZipDirectory.bad(file, "tensor '" + name + "' has a size and strides that overflow");
        }
    }

    /** The folder all entries share ("archive/", "pytorch_model/", ...). */
    private static String folder(Path file, ZipDirectory zip) {
        for (String name : zip.entries().keySet()) {
            if (name.endsWith("/data.pkl") && name.indexOf('/') == name.length() - "/data.pkl".length()) {
                return name.substring(0, name.length() - "data.pkl".length());
            }
        }
        throw ZipDirectory.bad(file, "no <folder>/data.pkl entry: not a torch.save file");
    }

    private static String text(MemorySegment data, ZipDirectory.Entry e) {
        if (e.size() > 64) return "?";
        return new String(data.asSlice(e.dataOffset(), e.size()).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    }
}
