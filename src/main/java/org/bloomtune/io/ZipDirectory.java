package org.bloomtune.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The entries of a zip file as {@code torch.save} writes it — every entry STORED (uncompressed),
 * ZIP64 records for sizes and offsets past 4 GiB (and, from some writers, always) — read straight
 * from a memory mapping of the file. Each entry's data offset comes from its <em>local</em> header,
 * whose extra field pads the data to a 64-byte boundary and differs from the central directory's.
 * Every offset and size is checked against the file before it is used.
 */
final class ZipDirectory {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final int EOCD = 0x06054b50;
    private static final int ZIP64_LOCATOR = 0x07064b50;
    private static final int ZIP64_EOCD = 0x06064b50;
    private static final int CENTRAL = 0x02014b50;
    private static final int LOCAL = 0x04034b50;
    private static final int ZIP64_EXTRA = 0x0001;
    /** A state dict of a few thousand tensors has a few thousand entries; far more is not a checkpoint. */
    static final int MAX_ENTRIES = 1 << 20;

    /** An entry's name and where its bytes are in the file. */
    record Entry(String name, long dataOffset, long size) {}

    private final Path file;
    private final Map<String, Entry> entries;

    private ZipDirectory(Path file, Map<String, Entry> entries) {
        this.file = file;
        this.entries = entries;
    }

    Map<String, Entry> entries() { return entries; }

    Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw bad(file, "no zip entry '" + name + "'");
        return e;
    }

    /** Reads the directory of the zip mapped in {@code data}. */
    static ZipDirectory read(Path file, MemorySegment data) {
        long size = data.byteSize();
        long eocd = findEndOfCentralDirectory(file, data);
        long count = data.get(U16, eocd + 10) & 0xFFFF;
        long cdSize = data.get(U32, eocd + 12) & 0xFFFFFFFFL;
        long cdOffset = data.get(U32, eocd + 16) & 0xFFFFFFFFL;
        if (eocd >= 20 && data.get(U32, eocd - 20) == ZIP64_LOCATOR) {
            long z64 = data.get(U64, eocd - 20 + 8);
            check(file, z64 >= 0 && z64 + 56 <= size && data.get(U32, z64) == ZIP64_EOCD, "the ZIP64 end record is missing or misplaced");
            count = data.get(U64, z64 + 32);
            cdSize = data.get(U64, z64 + 40);
            cdOffset = data.get(U64, z64 + 48);
        }
        check(file, count >= 0 && count <= MAX_ENTRIES, "the directory claims " + count + " entries (at most " + MAX_ENTRIES + ")");
        check(file, cdOffset >= 0 && cdSize >= 0 && cdOffset + cdSize <= size && count * 46 <= cdSize,
                "the central directory (" + count + " entries, " + cdSize + " bytes at " + cdOffset + ") does not fit the file of " + size + " bytes");
        Map<String, Entry> entries = new LinkedHashMap<>();
        long at = cdOffset;
        for (long i = 0; i < count; i++) {
            check(file, at + 46 <= cdOffset + cdSize && data.get(U32, at) == CENTRAL, "central directory entry " + i + " is damaged");
            Entry e = centralEntry(file, data, at);
            check(file, entries.put(e.name(), e) == null, "the zip holds '" + e.name() + "' twice");
            at += 46 + u16(data, at + 28) + u16(data, at + 30) + u16(data, at + 32);
        }
        return new ZipDirectory(file, Collections.unmodifiableMap(entries));
    }

    private static Entry centralEntry(Path file, MemorySegment data, long at) {
        int method = u16(data, at + 10);
        long compressed = data.get(U32, at + 20) & 0xFFFFFFFFL;
        long uncompressed = data.get(U32, at + 24) & 0xFFFFFFFFL;
        int nameLength = u16(data, at + 28);
        int extraLength = u16(data, at + 30);
        long localOffset = data.get(U32, at + 42) & 0xFFFFFFFFL;
        check(file, at + 46 + nameLength + extraLength <= data.byteSize(), "a central directory entry runs past the end of the file");
        String name = new String(data.asSlice(at + 46, nameLength).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        // ZIP64: the fields that overflowed 32 bits (all ones) follow in this order in extra field 0x0001.
        long extra = at + 46 + nameLength;
        for (long p = extra; p + 4 <= extra + extraLength; ) {
            int id = u16(data, p);
            int length = u16(data, p + 2);
            check(file, p + 4 + length <= extra + extraLength, "entry '" + name + "' has a damaged extra field");
            if (id == ZIP64_EXTRA) {
                long q = p + 4;
                if (uncompressed == 0xFFFFFFFFL && q + 8 <= p + 4 + length) { uncompressed = data.get(U64, q); q += 8; }
                if (compressed == 0xFFFFFFFFL && q + 8 <= p + 4 + length) { compressed = data.get(U64, q); q += 8; }
                if (localOffset == 0xFFFFFFFFL && q + 8 <= p + 4 + length) localOffset = data.get(U64, q);
            }
            p += 4 + length;
        }
        check(file, method == 0, "entry '" + name + "' is compressed (method " + method + "); torch.save stores entries uncompressed");
        check(file, compressed == uncompressed, "entry '" + name + "' claims " + compressed + " stored bytes for " + uncompressed);
        check(file, localOffset >= 0 && localOffset + 30 <= data.byteSize() && data.get(U32, localOffset) == LOCAL,
                "entry '" + name + "' points to no local header");
        long dataOffset = localOffset + 30 + u16(data, localOffset + 26) + u16(data, localOffset + 28);
        check(file, uncompressed >= 0 && dataOffset + uncompressed <= data.byteSize(),
                "entry '" + name + "' (" + uncompressed + " bytes at " + dataOffset + ") runs past the end of the file: truncated?");
        return new Entry(name, dataOffset, uncompressed);
    }

    // The end record is the last 22 bytes unless a comment (at most 65535 bytes) follows it.
    private static long findEndOfCentralDirectory(Path file, MemorySegment data) {
        long size = data.byteSize();
        check(file, size >= 22, "file of " + size + " bytes is too short for a zip (not a torch.save file?)");
        for (long p = size - 22; p >= Math.max(0, size - 22 - 65535); p--) {
            if (data.get(U32, p) == EOCD && p + 22 + u16(data, p + 20) == size) return p;
        }
        throw bad(file, "no zip end record: not a torch.save zip file, or truncated (a legacy pre-1.6 torch.save file is not supported: "
                + "re-save it with torch >= 1.6 or convert it to safetensors)");
    }

    private static int u16(MemorySegment data, long at) { return data.get(U16, at) & 0xFFFF; }

    private static void check(Path file, boolean ok, String what) {
        if (!ok) throw bad(file, what);
    }

    static IllegalArgumentException bad(Path file, String what) {
        return new IllegalArgumentException(file + ": " + what);
    }
}
