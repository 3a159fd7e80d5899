package org.bloomtune.io;

import org.bloomtune.tensor.LibTorch;
import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import java.util.ArrayList;
import java.util.Comparator;

import java.util.List;
import java.util.Map;

/**
 * Writes safetensors the way the reference implementation does: compact JSON header with
 * {@code __metadata__} first, tensors ordered by dtype size (largest first) then name, header padded
 * with spaces to a multiple of 8. The file appears atomically: it is written beside the target and
 * renamed, so a crash never leaves a half-written file under the real name.
 */
public final class SafetensorsWriter {
    static {
        LibTorch.init();
    }

    /** transformers' {@code from_pretrained} refuses safetensors files without this metadata. */
    public static final Map<String, String> PT_FORMAT = Map.of("format", "pt");

    private SafetensorsWriter() {}

    public static void write(Path file, Map<String, Tensor> tensors) {
        write(file, tensors, PT_FORMAT);
    }

    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        List<Map.Entry<String, Tensor>> ordered = new ArrayList<>(tensors.entrySet());
        ordered.sort(Comparator.<Map.Entry<String, Tensor>>comparingInt(
                e -> -DType.of(e.getValue().scalar_type()).byteSize()).thenComparing(Map.Entry::getKey));
        byte[] header = header(ordered, metadata);
        AtomicFiles.write(file, out -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip();
            writeFully(out, len);
            writeFully(out, ByteBuffer.wrap(header));
            try (Device cpu = new Device(torch.DeviceType.CPU)) {
                for (Map.Entry<String, Tensor> e : ordered) writeData(out, e.getValue(), cpu);
            }
        });
    }

    private static byte[] header(List<Map.Entry<String, Tensor>> ordered, Map<String, String> metadata) {
        JsonObject root = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            metadata.forEach(meta::addProperty);
            root.add("__metadata__", meta);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : ordered) {
            Tensor t = e.getValue();
            DType dtype = DType.of(t.scalar_type());
            long bytes = t.numel() * dtype.byteSize();
            JsonObject entry = new JsonObject();
            entry.addProperty("dtype", dtype.safetensorsName());
            JsonArray shape = new JsonArray();
            for (long d : Tensors.shape(t)) shape.add(d);
            entry.add("shape", shape);
            JsonArray offsets = new JsonArray();
            offsets.add(offset);
            offsets.add(offset + bytes);
            entry.add("data_offsets", offsets);
            root.add(e.getKey(), entry);
            offset += bytes;
        }
        byte[] json = new Gson().toJson(root).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = new byte[padded];
        System.arraycopy(json, 0, out, 0, json.length);
        for (int i = json.length; i < padded; i++) out[i] = ' ';
        return out;
    }

    private static void writeData(FileChannel out, Tensor t, Device cpu) throws IOException {
        try (Tensor detached = t.detach(); Tensor onCpu = detached.to(cpu, t.scalar_type());
             Tensor c = onCpu.contiguous()) {
            long bytes = c.numel() * c.element_size();
            if (bytes == 0) return;
            MemorySegment seg = NativeMemory.segment(c.data_ptr(), bytes);
            for (long pos = 0; pos < bytes; pos += 1 << 30) {
                long n = Math.min(1 << 30, bytes - pos);
                writeFully(out, seg.asSlice(pos, n).asByteBuffer());
            }
        }
    }

    private static void writeFully(FileChannel out, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) out.write(buf);
    }

}
