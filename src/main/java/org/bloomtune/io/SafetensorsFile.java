package org.bloomtune.io;

import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Set;

/**
 * A memory-mapped safetensors file. {@link #tensor} hands libtorch a view of the mapping without
 * copying, so those tensors are valid only while this file is open: whoever keeps them (a model's
 * weights) keeps the file open and closes it after them.
 */
public final class SafetensorsFile implements AutoCloseable {
    static {
        LibTorch.init();
    }

    private final Path path;
    private final SafetensorsHeader header;
    // Shared so a model may be used from any thread; it lives until close(), i.e. as long as the
    // tensors that alias it.
    private final Arena arena;
    private final MemorySegment data;

    private SafetensorsFile(Path path, SafetensorsHeader header, Arena arena, MemorySegment data) {
        this.path = path;
        this.header = header;
        this.arena = arena;
        this.data = data;
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw SafetensorsHeader.bad(path, "file of " + size + " bytes is too short for a safetensors header");
            // Read-only: checkpoints are often read-only files. Views handed to libtorch must
            // therefore never be written in place; the model only ever reads its weights.
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLength = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLength < 2 || headerLength > SafetensorsHeader.MAX_HEADER_BYTES || headerLength > size - 8) {
                throw SafetensorsHeader.bad(path, "header length " + headerLength
                        + " does not fit the file of " + size + " bytes");
            }
            byte[] json = all.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
            SafetensorsHeader header = SafetensorsHeader.parse(
                    path, TextFiles.decode(json, path + ": header"), headerLength, size);
            MemorySegment data = all.asSlice(header.dataStart());
            return new SafetensorsFile(path, header, arena, data);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() { return path; }

    public Set<String> names() { return header.tensors().keySet(); }

    public boolean contains(String name) { return header.tensors().containsKey(name); }

    public TensorInfo info(String name) {
        TensorInfo info = header.tensors().get(name);
        if (info == null) throw SafetensorsHeader.bad(path, "no tensor named '" + name + "'");
        return info;
    }

    public Map<String, String> metadata() { return header.metadata(); }

    /** A zero-copy view of tensor {@code name}; valid until this file is closed. */
    public Tensor tensor(String name) {
        TensorInfo info = info(name);
        MemorySegment bytes = data.asSlice(info.begin(), info.byteSize());
        try (TensorOptions options = new TensorOptions(info.dtype().scalarType())) {
            return torch.from_blob(NativeMemory.pointer(bytes), info.shape(), options);
        }
    }

    /**
     * Drops the mapped pages of tensor {@code name} from resident memory ({@code madvise
     * MADV_DONTNEED} through {@link MemorySegment#unload}); a later read maps them in again from
     * the file. Without this, an int8 load touched — and kept resident — the whole float file on
     * top of the int8 copy it was quantized to (benchmarks/FINDINGS.md).
     */
    public void release(String name) {
        TensorInfo info = info(name);
        if (info.byteSize() > 0) data.asSlice(info.begin(), info.byteSize()).unload();
    }

    /** A copy of tensor {@code name} that owns its memory and outlives this file. */
    public Tensor copy(String name) {
        try (Tensor view = tensor(name)) {
            return view.clone();
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
