package org.bloomtune.io;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.zip.CRC32;

/**
 * Writes a state dict as {@code torch.save} does — a zip of STORED entries, {@code data.pkl} in
 * pickle protocol 2, one {@code data/<key>} entry per storage padded to 64 bytes, {@code byteorder}
 * and {@code version} — so PyTorch's {@code torch.load} and HF's {@code from_pretrained} read it.
 * Storages are explicit, so views that share one (a tied {@code lm_head.weight}) or are not
 * contiguous can be written as such. A storage's bytes are produced when it is written and let go
 * after, so a file larger than memory can be written; a storage of zeros becomes a hole in a
 * sparse file.
 */
public final class TorchBinWriter {
    private static final int ALIGNMENT = 64;
    private static final long U32_MAX = 0xFFFFFFFFL;
    /** ByteBuffers hold at most 2 GiB: large storages go out in slices. */
    private static final long CHUNK = 1L << 30;

    private record Storage(String key, DType dtype, long numel, Supplier<Tensor> contents) {}

    private record View(String name, String storage, long offset, long[] shape, long[] stride) {}

    private record Written(String name, long localOffset, long size, long crc) {}

    private final Map<String, Storage> storages = new LinkedHashMap<>();
    private final List<View> views = new ArrayList<>();
    private String folder = "archive";
    private boolean forceZip64;

    /** A tensor with a storage of its own (a contiguous copy of {@code t}, which the caller keeps owning). */
    public TorchBinWriter tensor(String name, Tensor t) {
        String key = Integer.toString(storages.size());
        long[] shape = t.sizes().vec().get();
        storage(key, DType.of(t.scalar_type()), t.numel(), () -> t.contiguous());
        return view(name, key, 0, shape, contiguousStrides(shape));
    }

    /**
     * A storage of {@code numel} elements; {@code contents} gives them as a contiguous tensor of at
     * least that many elements when the file is written (the writer closes it), or is null for zeros.
     */
    public TorchBinWriter storage(String key, DType dtype, long numel, Supplier<Tensor> contents) {
        if (storages.containsKey(key)) throw new IllegalArgumentException("storage " + key + " is given twice");
        storages.put(key, new Storage(key, dtype, numel, contents));
        return this;
    }

    /** Tensor {@code name}: elements of {@code storage} from {@code offset}, with these sizes and strides (in elements). */
    public TorchBinWriter view(String name, String storage, long offset, long[] shape, long[] stride) {
        if (!storages.containsKey(storage)) throw new IllegalArgumentException("tensor " + name + ": no storage " + storage);
        views.add(new View(name, storage, offset, shape.clone(), stride.clone()));
        return this;
    }

    /** The top folder of the entries ("archive" by default; torch 2.x names it after the file). */
    public TorchBinWriter folder(String name) { folder = name; return this; }

    /** ZIP64 records for every entry, as some writers emit even for small files (readers must cope). */
    public TorchBinWriter forceZip64(boolean v) { forceZip64 = v; return this; }

    /** Writes the file atomically (a temporary file renamed into place). */
    public void write(Path file) {
        AtomicFiles.write(file, out -> {
            List<Written> written = new ArrayList<>();
            written.add(entry(out, folder + "/data.pkl", pickle()));
            written.add(entry(out, folder + "/byteorder", "little".getBytes(StandardCharsets.US_ASCII)));
            for (Storage s : storages.values()) written.add(storageEntry(out, s));
            written.add(entry(out, folder + "/version", "3\n".getBytes(StandardCharsets.US_ASCII)));
            centralDirectory(out, written);
        });
    }

    // ---- the pickle --------------------------------------------------------------------------------

    private byte[] pickle() {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        p.write(0x80);
        p.write(2);                                        // PROTO 2
        p.write('}');                                      // EMPTY_DICT
        p.write('(');                                      // MARK
        for (View v : views) {
            Storage s = storages.get(v.storage());
            unicode(p, v.name());
            global(p, "torch._utils", "_rebuild_tensor_v2");
            p.write('(');
            p.write('(');                                  // the persistent id ('storage', type, key, location, numel)
            unicode(p, "storage");
            global(p, "torch", storageClass(s.dtype()));
            unicode(p, s.key());
            unicode(p, "cpu");
            integer(p, s.numel());
            p.write('t');
            p.write('Q');                                  // BINPERSID
            integer(p, v.offset());
            tuple(p, v.shape());
            tuple(p, v.stride());
            p.write(0x89);                                 // requires_grad = False
            global(p, "collections", "OrderedDict");
            p.write(')');
            p.write('R');                                  // backward_hooks = OrderedDict()
            p.write('t');
            p.write('R');                                  // _rebuild_tensor_v2(...)
        }
        p.write('u');                                      // SETITEMS
        p.write('.');                                      // STOP
        return p.toByteArray();
    }

    private static void unicode(ByteArrayOutputStream p, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        p.write('X');
        p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
        p.writeBytes(b);
    }

    private static void global(ByteArrayOutputStream p, String module, String name) {
        p.write('c');
        p.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
    }

    private static void integer(ByteArrayOutputStream p, long v) {
        if (v >= 0 && v < 256) {
            p.write('K');
            p.write((int) v);
        } else if (v >= 0 && v < 65536) {
            p.write('M');
            p.writeBytes(ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort((short) v).array());
        } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
            p.write('J');
            p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
        } else {
            p.write(0x8a);                                 // LONG1, 8 bytes little-endian two's complement
            p.write(8);
            p.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
        }
    }

    private static void tuple(ByteArrayOutputStream p, long[] values) {
        if (values.length == 0) {
            p.write(')');
            return;
        }
        p.write('(');
        for (long v : values) integer(p, v);
        p.write('t');
    }

    private static String storageClass(DType d) {
        return switch (d) {
            case F32 -> "FloatStorage";
            case F16 -> "HalfStorage";
            case BF16 -> "BFloat16Storage";
            case F64 -> "DoubleStorage";
            case I64 -> "LongStorage";
            case I32 -> "IntStorage";
            case I16 -> "ShortStorage";
            case I8 -> "CharStorage";
            case U8 -> "ByteStorage";
            case BOOL -> "BoolStorage";
        };
    }

    // ---- the zip ---------------------------------------------------------------------------------------

    private Written entry(FileChannel out, String name, byte[] data) throws IOException {
        CRC32 crc = new CRC32();
        crc.update(data);
        long at = out.position();
        header(out, name, data.length, crc.getValue());
        writeFully(out, ByteBuffer.wrap(data));
        return new Written(name, at, data.length, crc.getValue());
    }

    private Written storageEntry(FileChannel out, Storage s) throws IOException {
        String name = folder + "/data/" + s.key();
        long size = Math.multiplyExact(s.numel(), s.dtype().byteSize());
        long at = out.position();
        if (s.contents() == null) {
            long crc = zerosCrc(size);
            header(out, name, size, crc);
            out.position(out.position() + size);           // a hole: the file system stores no zeros
            if (size > 0) writeFully(out.position(out.position() - 1), ByteBuffer.wrap(new byte[1]));
            return new Written(name, at, size, crc);
        }
        try (Tensor t = s.contents().get()) {
            if (t.numel() < s.numel() || !t.is_contiguous()) throw new IllegalArgumentException("storage " + s.key() + ": contents are not a contiguous tensor of " + s.numel() + " elements");
            MemorySegment bytes = NativeMemory.segment(t.data_ptr(), size);
            CRC32 crc = new CRC32();
            for (long p = 0; p < size; p += CHUNK) crc.update(bytes.asSlice(p, Math.min(CHUNK, size - p)).asByteBuffer());
            header(out, name, size, crc.getValue());
            for (long p = 0; p < size; p += CHUNK) writeFully(out, bytes.asSlice(p, Math.min(CHUNK, size - p)).asByteBuffer());
            return new Written(name, at, size, crc.getValue());
        }
    }

    private static long zerosCrc(long size) {
        CRC32 crc = new CRC32();
        ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
        for (long left = size; left > 0; left -= zeros.capacity()) {
            crc.update(zeros.clear().limit((int) Math.min(zeros.capacity(), left)));
        }
        return crc.getValue();
    }

    /** A local header whose extra field pads the data to a 64-byte boundary (torch's own layout). */
    private void header(FileChannel out, String name, long size, long crc) throws IOException {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        boolean zip64 = forceZip64 || size >= U32_MAX;
        int zip64Extra = zip64 ? 20 : 0;
        long start = out.position();
        long dataAt = start + 30 + n.length + zip64Extra + 4;
        int pad = (int) ((ALIGNMENT - dataAt % ALIGNMENT) % ALIGNMENT);
        ByteBuffer h = ByteBuffer.allocate(30 + n.length + zip64Extra + 4 + pad).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(0x04034b50).putShort((short) (zip64 ? 45 : 20)).putShort((short) 0x0800).putShort((short) 0)
                .putShort((short) 0).putShort((short) 0).putInt((int) crc)
                .putInt(zip64 ? -1 : (int) size).putInt(zip64 ? -1 : (int) size)
                .putShort((short) n.length).putShort((short) (zip64Extra + 4 + pad)).put(n);
        if (zip64) h.putShort((short) 0x0001).putShort((short) 16).putLong(size).putLong(size);
        h.putShort((short) 0x4246).putShort((short) pad);  // "FB": padding, as PyTorch's writer does
        h.position(h.position() + pad);
        writeFully(out, h.flip());
    }

    private void centralDirectory(FileChannel out, List<Written> entries) throws IOException {
        long cdStart = out.position();
        for (Written e : entries) {
            byte[] n = e.name().getBytes(StandardCharsets.UTF_8);
            boolean zip64 = forceZip64 || e.size() >= U32_MAX || e.localOffset() >= U32_MAX;
            ByteBuffer c = ByteBuffer.allocate(46 + n.length + (zip64 ? 28 : 0)).order(ByteOrder.LITTLE_ENDIAN);
            c.putInt(0x02014b50).putShort((short) (zip64 ? 45 : 20)).putShort((short) (zip64 ? 45 : 20)).putShort((short) 0x0800)
                    .putShort((short) 0).putShort((short) 0).putShort((short) 0).putInt((int) e.crc())
                    .putInt(zip64 ? -1 : (int) e.size()).putInt(zip64 ? -1 : (int) e.size())
                    .putShort((short) n.length).putShort((short) (zip64 ? 28 : 0)).putShort((short) 0)
                    .putShort((short) 0).putShort((short) 0).putInt(0).putInt(zip64 ? -1 : (int) e.localOffset()).put(n);
            if (zip64) c.putShort((short) 0x0001).putShort((short) 24).putLong(e.size()).putLong(e.size()).putLong(e.localOffset());
            writeFully(out, c.flip());
        }
        long cdSize = out.position() - cdStart;
        boolean zip64 = forceZip64 || cdStart >= U32_MAX || entries.size() >= 0xFFFF;
        if (zip64) {
            long z64 = out.position();
            ByteBuffer r = ByteBuffer.allocate(56 + 20).order(ByteOrder.LITTLE_ENDIAN);
            r.putInt(0x06064b50).putLong(44).putShort((short) 45).putShort((short) 45).putInt(0).putInt(0)
                    .putLong(entries.size()).putLong(entries.size()).putLong(cdSize).putLong(cdStart);
            r.putInt(0x07064b50).putInt(0).putLong(z64).putInt(1);
            writeFully(out, r.flip());
        }
        ByteBuffer end = ByteBuffer.allocate(22).order(ByteOrder.LITTLE_ENDIAN);
        int count = zip64 ? 0xFFFF : entries.size();
        end.putInt(0x06054b50).putShort((short) 0).putShort((short) 0).putShort((short) count).putShort((short) count)
                .putInt(zip64 ? -1 : (int) cdSize).putInt(zip64 ? -1 : (int) cdStart).putShort((short) 0);
        writeFully(out, end.flip());
    }

    private static long[] contiguousStrides(long[] shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            stride[d] = s;
            s *= Math.max(1, shape[d]);
        }
        return stride;
    }

    private static void writeFully(FileChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) out.write(b);
    }
}
