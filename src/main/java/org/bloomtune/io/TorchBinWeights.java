package org.bloomtune.io;

import org.bloomtune.io.TorchArchive.TensorView;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Map;
import java.util.Set;

/**
 * A {@code pytorch_model.bin} — the zip {@code torch.save} writes — read without libtorch's pickle
 * loader and without executing its pickle ({@link TorchArchive}): any size, and zero-copy, as
 * safetensors are. Each tensor is a strided view of its storage's bytes in a read-only mapping of
 * the file; tensors that share a storage (a tied {@code lm_head.weight}) share those bytes. The
 * mapping lives until {@link #close}, as long as the views.
 */
public final class TorchBinWeights implements WeightSource {
    static {
        LibTorch.init();
    }

    private final Path file;
    // Shared so a model may be used from any thread; it lives until close(), as the views do.
    private final Arena arena;
    private final TorchArchive archive;

    private TorchBinWeights(Path file, Arena arena, TorchArchive archive) {
        this.file = file;
        this.arena = arena;
        this.archive = archive;
    }

    public static TorchBinWeights read(Path file) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment data = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new TorchBinWeights(file, arena, TorchArchive.read(file, data));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new UncheckedIOException(file + ": no such file", e);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Every tensor of the file with its view: name → dtype, shape, strides and bytes. */
    public Map<String, TensorView> views() { return Collections.unmodifiableMap(archive.tensors()); }

    @Override
    public String description() { return file.toString(); }

    @Override
    public Set<String> names() { return archive.tensors().keySet(); }

    @Override
    public long[] shape(String name) { return view(name).shape().clone(); }

    @Override
    public DType dtype(String name) { return view(name).dtype(); }

    /**
     * A view of tensor {@code name} in the mapping, valid until this source is closed. An element
     * that does not sit at a multiple of its size in memory (files older than the 64-byte padding
     * torch writes now) is copied instead: libtorch's kernels assume aligned elements.
     */
    @Override
    public Tensor get(String name) {
        TensorView v = view(name);
        try (TensorOptions options = new TensorOptions(v.dtype().scalarType())) {
            Tensor view = torch.from_blob(NativeMemory.pointer(v.bytes()), v.shape(), v.stride(), options);
            if (v.bytes().address() % v.dtype().byteSize() == 0) return view;
            try (view) {
                return view.clone();
            }
        }
    }

    /** Drops the storage's mapped pages from resident memory (they are read again from the file if needed). */
    @Override
    public void release(String name) {
        MemorySegment storage = view(name).storageBytes();
        if (storage.byteSize() > 0) storage.unload();
    }

    @Override
    public boolean aliasesStorage() { return true; }

    private TensorView view(String name) {
        TensorView v = archive.tensors().get(name);
        if (v == null) throw new IllegalArgumentException(file + ": no tensor named '" + name + "'");
        return v;
    }

    @Override
    public void close() {
        arena.close();
    }
}
