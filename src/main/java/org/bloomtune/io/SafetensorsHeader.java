package org.bloomtune.io;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed and validated safetensors header. Everything a lying or truncated file could use to
 * make us read outside the mapping is checked here, before any pointer reaches libtorch.
 */
public record SafetensorsHeader(Map<String, TensorInfo> tensors, Map<String, String> metadata, long dataStart) {

    /** Largest header we accept; the format's reference implementation uses the same 100 MB cap. */
    static final long MAX_HEADER_BYTES = 100L << 20;

    /**
     * Validates {@code json} as the header of {@code file}, whose total size is {@code fileSize}
     * and whose header length field said {@code headerLength}.
     */
    static SafetensorsHeader parse(Path file, String json, long headerLength, long fileSize) {
        long dataStart = 8 + headerLength;
        long dataSize = fileSize - dataStart;
        JsonElement parsed = Json.parse(json, file + ": header");
        if (!parsed.isJsonObject()) throw bad(file, "header is not a JSON object");
        JsonObject root = parsed.getAsJsonObject();
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : root.entrySet()) {
            if (e.getKey().equals("__metadata__")) {
                metadata.putAll(parseMetadata(file, e.getValue()));
            } else {
                tensors.put(e.getKey(), parseEntry(file, e.getKey(), e.getValue(), dataSize));
            }
        }
        checkCoverage(file, tensors.values(), dataSize);
        return new SafetensorsHeader(Collections.unmodifiableMap(tensors),
                Collections.unmodifiableMap(metadata), dataStart);
    }

    private static Map<String, String> parseMetadata(Path file, JsonElement value) {
        if (!value.isJsonObject()) throw bad(file, "__metadata__ is not an object of strings");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> m : value.getAsJsonObject().entrySet()) {
            JsonElement v = m.getValue();
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
                throw bad(file, "__metadata__." + m.getKey() + " is not a string");
            }
            out.put(m.getKey(), v.getAsString());
        }
        return out;
    }

    private static TensorInfo parseEntry(Path file, String name, JsonElement value, long dataSize) {
        String where = "tensor '" + name + "'";
        if (!value.isJsonObject()) throw bad(file, where + " is not an object");
        JsonObject o = value.getAsJsonObject();
        JsonElement dtypeJson = o.get("dtype");
        if (dtypeJson == null || !dtypeJson.isJsonPrimitive()) throw bad(file, where + " has no dtype");
        DType dtype = DType.fromSafetensors(dtypeJson.getAsString());
        if (dtype == null) throw bad(file, where + " has unsupported dtype " + dtypeJson);
        long[] shape = longArray(file, where + " shape", o.get("shape"), -1);
        long[] offsets = longArray(file, where + " data_offsets", o.get("data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end || end > dataSize) {
            throw bad(file, where + " data_offsets [" + begin + ", " + end
                    + "] lie outside the data section of " + dataSize + " bytes");
        }
        long numel;
        try {
            numel = Tensors.numel(shape);
            long expected = Math.multiplyExact(numel, dtype.byteSize());
            if (expected != end - begin) {
                throw bad(file, where + " is " + dtype + Arrays.toString(shape) + " = " + expected
                        + " bytes but its data_offsets span " + (end - begin) + " bytes");
            }
        } catch (ArithmeticException e) {
            throw bad(file, where + " shape " + Arrays.toString(shape) + " overflows");
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] longArray(Path file, String what, JsonElement value, int requiredLength) {
        if (value == null || !value.isJsonArray()) throw bad(file, what + " is missing or not an array");
        JsonArray a = value.getAsJsonArray();
        if (requiredLength >= 0 && a.size() != requiredLength) {
            throw bad(file, what + " must have " + requiredLength + " entries, has " + a.size());
        }
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonElement v = a.get(i);
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
                throw bad(file, what + "[" + i + "] is not a number");
            }
            double d = v.getAsDouble();
            long l = v.getAsLong();
            if (l < 0 || d != Math.rint(d) || d > Long.MAX_VALUE) {
                throw bad(file, what + "[" + i + "] = " + v + " is not a non-negative integer");
            }
            out[i] = l;
        }
        return out;
    }

    /**
     * The tensors must tile the data section exactly — from byte 0, no gaps, no overlaps, up to the
     * end of the file — as the format's reference loader requires. A header length that is off by
     * a few bytes still parses as JSON; this is what catches it.
     */
    private static void checkCoverage(Path file, Iterable<TensorInfo> infos, long dataSize) {
        List<TensorInfo> sorted = new ArrayList<>();
        infos.forEach(sorted::add);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = 0;
        TensorInfo prev = null;
        for (TensorInfo cur : sorted) {
            if (cur.begin() < expected) {
                throw bad(file, "tensors '" + prev.name() + "' and '" + cur.name() + "' overlap (" + prev.begin() + ".." + prev.end()
                        + " and " + cur.begin() + ".." + cur.end() + ")");
            }
            if (cur.begin() > expected) {
                throw bad(file, "bytes " + expected + ".." + cur.begin() + " of the data section belong to no tensor (before '"
                        + cur.name() + "'): the header length or data_offsets are wrong");
            }
            expected = cur.end();
            prev = cur;
        }
        if (expected != dataSize) {
            throw bad(file, "the tensors cover " + expected + " bytes but the data section holds " + dataSize
                    + ": the header length or data_offsets are wrong, or the file is truncated or has trailing bytes");
        }
    }

    static IllegalArgumentException bad(Path file, String what) {
        return new IllegalArgumentException(file + ": " + what);
    }
}
