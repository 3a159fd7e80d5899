package org.bloomtune.io;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsTest {
    @TempDir
    Path dir;

    @Test
    void roundTripKeepsValuesDtypesShapesAndPtMetadata() throws IOException {
        Path file = dir.resolve("t.safetensors");
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("b.weight", Tensors.fromFloats(new float[]{1, 2, 3, 4, 5, 6}, 2, 3));
        tensors.put("a.ids", Tensors.fromLongs(new long[]{7, -100, 9}, 3));
        tensors.put("c.half", Tensors.fromFloats(new float[]{0.5f, -2}, 2).to(DType.F16.scalarType()));
        tensors.put("scalar", Tensors.fromFloats(new float[]{3.25f}));
        SafetensorsWriter.write(file, tensors);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(DType.F16, f.info("c.half").dtype());
            assertArrayEquals(new long[]{2, 3}, f.info("b.weight").shape());
            assertArrayEquals(new long[0], f.info("scalar").shape());
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, Tensors.toFloats(f.tensor("b.weight")));
            assertArrayEquals(new long[]{7, -100, 9}, Tensors.toLongs(f.tensor("a.ids")));
            assertArrayEquals(new float[]{0.5f, -2}, Tensors.toFloats(f.tensor("c.half")));
            assertArrayEquals(new float[]{3.25f}, Tensors.toFloats(f.tensor("scalar")));
        }
        // The header is compact JSON with __metadata__ first, padded with spaces to 8 bytes.
        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLength % 8);
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
        // Largest dtype first (I64 before F32 before F16), then by name.
        assertTrue(header.indexOf("a.ids") < header.indexOf("b.weight") && header.indexOf("b.weight") < header.indexOf("c.half"));
    }

    @Test
    void headerLengthBeyondTheFileIsRejected() throws IOException {
        Path file = raw(1_000, "{}");
        assertMessage(file, "header length 1000 does not fit");
    }

    @Test
    void truncatedFileIsRejected() throws IOException {
        Path file = dir.resolve("short.safetensors");
        Files.write(file, new byte[]{1, 2, 3});
        assertMessage(file, "too short");
    }

    @Test
    void malformedJsonIsRejected() throws IOException {
        assertMessage(raw(-1, "{\"a\": {\"dtype\": "), "header: invalid JSON at column");
    }

    @Test
    void offsetsOutsideTheDataAreRejected() throws IOException {
        Path file = raw(-1, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertMessage(file, "tensor 'w' data_offsets [0, 16] lie outside the data section of 8 bytes");
    }

    @Test
    void byteCountDisagreeingWithDtypeAndShapeIsRejected() throws IOException {
        Path file = raw(-1, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
        assertMessage(file, "tensor 'w' is F32[3] = 12 bytes but its data_offsets span 16 bytes");
    }

    @Test
    void overlappingTensorsAreRejected() throws IOException {
        Path file = raw(-1, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertMessage(file, "tensors 'a' and 'b' overlap");
    }

    @Test
    void unknownDtypeAndNegativeShapeAreRejected() throws IOException {
        assertMessage(raw(-1, "{\"w\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unsupported dtype");
        assertMessage(raw(-1, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                "is not a non-negative integer");
        assertMessage(raw(-1, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "data_offsets is missing");
    }

    @Test
    void hugeShapeThatOverflowsIsRejected() throws IOException {
        Path file = raw(-1, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4);
        assertMessage(file, "overflows");
    }

    @Test
    void unknownTensorNameIsAClearError() {
        Path file = dir.resolve("ok.safetensors");
        SafetensorsWriter.write(file, Map.of("x", Tensors.fromFloats(new float[]{1}, 1)));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.tensor("y"));
            assertTrue(e.getMessage().contains("no tensor named 'y'"), e.getMessage());
        }
    }

    @Test
    void failedWriteLeavesNoFileBehind() {
        Path file = dir.resolve("never.safetensors");
        assertThrows(RuntimeException.class, () -> AtomicFiles.write(file, out -> {
            throw new IOException("disk full");
        }));
        assertTrue(!Files.exists(file));
        try (var list = Files.list(dir)) {
            assertEquals(0, list.count(), "temporary file left behind");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    /** A file with the given JSON header (length field overridden when >= 0) and zeroed data. */
    private Path raw(long headerLengthField, String json) throws IOException {
        return raw(headerLengthField, json, 0);
    }

    private Path raw(long headerLengthField, String json, int dataBytes) throws IOException {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLengthField >= 0 ? headerLengthField : header.length).put(header);
        Path file = Files.createTempFile(dir, "bad", ".safetensors");
        Files.write(file, b.array());
        return file;
    }

    private static void assertMessage(Path file, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SafetensorsFile.open(file).close());
        assertTrue(e.getMessage().contains(file.toString()), "message does not name the file: " + e.getMessage());
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }
}
