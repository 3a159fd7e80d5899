package org.bloomtune.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.tensor.Tensors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A seeded fuzz of every file a user hands the CLI: each case mutates one file (bytes flipped,
 * cut, spliced; JSON values swapped for nulls, fractions, huge or negative numbers, wrong types;
 * keys dropped) and runs the command that reads it. Whatever the input, the command exits 0 or 2;
 * on 2 it prints exactly one line without a stack trace; it never hangs, never crashes the JVM
 * (these run in this JVM) and leaves nothing half-written. Set {@code -Dbloomtune.fuzz.seed=N}
 * (and {@code .cases}) to run other seeds.
 */
class InputFuzzTest {
    static final long SEED = Long.getLong("bloomtune.fuzz.seed", 20261201L);
    static final int CASES = Integer.getInteger("bloomtune.fuzz.cases", 200);
    static final Path MODEL = Reference.reference("hf/a/model");
    static final Path TINY = Path.of("models/bloom-tiny");

    @TempDir
    static Path dir;
    static Path input;
    static Path adapter;
    static Path data;

    enum Kind { CONFIG, WEIGHTS, TORCH_BIN, TOKENIZER, ADAPTER_CONFIG, ADAPTER_WEIGHTS, ALPACA, INPUT_TENSORS }

    @BeforeAll
    static void fixtures() throws IOException {
        input = dir.resolve("in.safetensors");
        Map<String, org.bytedeco.pytorch.Tensor> in = new LinkedHashMap<>();
        in.put("input_ids", Tensors.fromLongs(new long[]{5, 9, 13, 2, 7, 1}, 2, 3));
        in.put("attention_mask", Tensors.fromLongs(new long[]{1, 1, 1, 0, 1, 1}, 2, 3));
        in.put("labels", Tensors.fromLongs(new long[]{5, 9, 13, -100, 7, 1}, 2, 3));
        SafetensorsWriter.write(input, in);
        adapter = Reference.reference("hf/a/adapters/random");
        JsonArray all = JsonParser.parseString(Files.readString(Path.of("models/demo-data/alpaca_zh_demo_first300.json"))).getAsJsonArray();
        JsonArray four = new JsonArray();
        for (int i = 0; i < 4; i++) four.add(all.get(i));
        data = dir.resolve("alpaca.json");
        Files.writeString(data, four.toString());
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void everyMutantExitsZeroOrTwoWithOneLine(Kind kind) throws Exception {
        Random random = new Random(SEED ^ kind.ordinal() * 0x9E3779B97F4A7C15L);
        int[] codes = new int[3];
        ExecutorService worker = Executors.newSingleThreadExecutor();
        try {
            for (int n = 0; n < CASES; n++) {
                Path caseDir = Files.createDirectories(dir.resolve(kind + "-" + n));
                String[] args = prepare(kind, caseDir, random);
                Future<CliTest.Run> future = worker.submit(() -> CliTest.run(args));
                CliTest.Run r;
                try {
                    r = future.get(60, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    fail(kind + " case " + n + " hangs: " + String.join(" ", args));
                    return;
                }
                String what = kind + " case " + n + " (" + String.join(" ", args) + "):\n" + r.err();
                assertTrue(r.code() == 0 || r.code() == 2, "exit " + r.code() + ", " + what);
                codes[r.code()]++;
                if (Boolean.getBoolean("bloomtune.fuzz.verbose")) System.out.println(kind + " " + n + " -> " + r.code() + " " + r.err().strip());
                if (r.code() == 2) {
                    assertEquals(1, r.err().strip().lines().count(), "one line: " + what);
                    NewcomerTest.assertNoStackTrace(r.err());
                }
                assertNothingHalfWritten(caseDir, what);
                deleteTree(caseDir);
            }
        } finally {
            worker.shutdownNow();
        }
        System.out.printf("fuzz %s: %d cases, %d accepted, %d refused (seed %d)%n", kind, CASES, codes[0], codes[2], SEED);
        assertTrue(codes[2] > CASES / 10, kind + ": the mutations should mostly break the file");
    }

    /** Writes the mutated file into {@code caseDir} and returns the command that reads it. */
    private static String[] prepare(Kind kind, Path caseDir, Random random) throws IOException {
        Path out = caseDir.resolve("out");
        return switch (kind) {
            case CONFIG -> {
                Path m = NewcomerTest.copyModel(MODEL, caseDir.resolve("model"));
                Files.writeString(m.resolve("config.json"), mutateJson(Files.readString(m.resolve("config.json")), random));
                yield forward(m, out.resolve("o.safetensors"));
            }
            case WEIGHTS -> {
                Path m = NewcomerTest.copyModel(MODEL, caseDir.resolve("model"));
                Files.write(m.resolve("model.safetensors"), mutateSafetensors(Files.readAllBytes(m.resolve("model.safetensors")), random));
                yield forward(m, out.resolve("o.safetensors"));
            }
            case TORCH_BIN -> {
                Path m = NewcomerTest.copyModel(Reference.reference("hf/a/model-bin"), caseDir.resolve("model"));
                byte[] bin = Files.readAllBytes(m.resolve("pytorch_model.bin"));
                Files.write(m.resolve("pytorch_model.bin"), mutateTorchBin(bin, random));
                yield forward(m, out.resolve("o.safetensors"));
            }
            case TOKENIZER -> {
                Path t = caseDir.resolve("tokenizer.json");
                Files.writeString(t, mutateJson(Files.readString(TINY.resolve("tokenizer.json")), random));
                yield new String[]{"generate", "--model", TINY.toString(), "--tokenizer", t.toString(), "--prompt", "你好, world! 123",
                        "--max-new-tokens", "2"};
            }
            case ADAPTER_CONFIG, ADAPTER_WEIGHTS -> {
                Path a = NewcomerTest.copyModel(adapter, caseDir.resolve("adapter"));
                if (kind == Kind.ADAPTER_CONFIG) {
                    Files.writeString(a.resolve("adapter_config.json"), mutateJson(Files.readString(a.resolve("adapter_config.json")), random));
                } else {
                    Path w = a.resolve("adapter_model.safetensors");
                    Files.write(w, mutateSafetensors(Files.readAllBytes(w), random));
                }
                String[] f = forward(MODEL, out.resolve("o.safetensors"));
                String[] withAdapter = Arrays.copyOf(f, f.length + 3);
                withAdapter[f.length] = "--adapter";
                withAdapter[f.length + 1] = a.toString();
                withAdapter[f.length + 2] = "--grad";
                yield withAdapter;
            }
            case ALPACA -> {
                Path d = caseDir.resolve("data.json");
                Files.writeString(d, mutateJson(Files.readString(data), random));
                yield new String[]{"train", "--model", TINY.toString(), "--data", d.toString(), "--output", out.toString(),
                        "--max-steps", "1", "--max-length", "32", "--batch-size", "2", "--eval-split", "0"};
            }
            case INPUT_TENSORS -> {
                Path i = caseDir.resolve("in.safetensors");
                Files.write(i, mutateSafetensors(Files.readAllBytes(input), random));
                yield new String[]{"forward", "--model", MODEL.toString(), "--input", i.toString(), "--output",
                        out.resolve("o.safetensors").toString()};
            }
        };
    }

    private static String[] forward(Path model, Path output) {
        return new String[]{"forward", "--model", model.toString(), "--input", input.toString(), "--output", output.toString()};
    }

    // ---- mutations -------------------------------------------------------------------------------

    static final List<Function<Random, JsonElement>> VALUES = List.of(
            r -> JsonNull.INSTANCE, r -> new JsonPrimitive(true), r -> new JsonPrimitive("x"), r -> new JsonPrimitive(""),
            r -> new JsonPrimitive(5.5), r -> new JsonPrimitive(-1), r -> new JsonPrimitive(0), r -> new JsonPrimitive(Integer.MAX_VALUE),
            r -> new JsonPrimitive(new BigDecimal("9223372036854775808")), r -> new JsonPrimitive(new BigDecimal("1e999")),
            r -> new JsonArray(), r -> new JsonObject(), r -> new JsonPrimitive(r.nextInt(100_000)),
            r -> new JsonPrimitive("\u0000\uFFFF中"));

    /** A structural change (swap a value, drop or rename a key) or, one time in three, a textual one. */
    static String mutateJson(String json, Random random) {
        if (random.nextInt(3) == 0) return new String(mutateBytes(json.getBytes(StandardCharsets.UTF_8), random), StandardCharsets.UTF_8);
        JsonElement root = JsonParser.parseString(json);
        List<JsonElement> containers = new ArrayList<>();
        collect(root, containers);
        JsonElement target = containers.get(random.nextInt(containers.size()));
        JsonElement value = VALUES.get(random.nextInt(VALUES.size())).apply(random);
        if (target.isJsonObject() && target.getAsJsonObject().size() > 0) {
            JsonObject o = target.getAsJsonObject();
            String key = new ArrayList<>(o.keySet()).get(random.nextInt(o.size()));
            switch (random.nextInt(4)) {
                case 0 -> o.remove(key);
                case 1 -> o.add(key + "_", o.remove(key));
                default -> o.add(key, value);
            }
        } else if (target.isJsonArray() && !target.getAsJsonArray().isEmpty()) {
            JsonArray a = target.getAsJsonArray();
            int i = random.nextInt(a.size());
            if (random.nextBoolean()) a.set(i, value);
            else a.remove(i);
        } else {
            return json + (random.nextBoolean() ? "," : " NaN");
        }
        String out = root.toString();
        return random.nextInt(8) == 0 ? out.replace(":0,", ":NaN,") : out;
    }

    private static void collect(JsonElement e, List<JsonElement> out) {
        if (e.isJsonObject()) {
            out.add(e);
            // Large tables (a vocabulary) are one target, not thousands: the structure around them matters more.
            if (e.getAsJsonObject().size() < 64) for (JsonElement c : e.getAsJsonObject().asMap().values()) collect(c, out);
        } else if (e.isJsonArray()) {
            out.add(e);
            if (e.getAsJsonArray().size() < 64) for (JsonElement c : e.getAsJsonArray()) collect(c, out);
        }
    }

    /** Flipped, cut, inserted or duplicated bytes. */
    static byte[] mutateBytes(byte[] in, Random random) {
        byte[] b = in.clone();
        int pos = random.nextInt(Math.max(1, b.length));
        return switch (random.nextInt(5)) {
            case 0 -> {
                for (int k = 0; k < 1 + random.nextInt(4); k++) b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
                yield b;
            }
            case 1 -> Arrays.copyOf(b, pos);
            case 2 -> splice(b, pos, new byte[]{(byte) random.nextInt(256), (byte) random.nextInt(256)});
            case 3 -> splice(b, pos, Arrays.copyOfRange(b, pos, Math.min(b.length, pos + 1 + random.nextInt(32))));
            default -> {
                b[pos] = (byte) (0x80 + random.nextInt(0x80));                    // invalid UTF-8 in text
                yield b;
            }
        };
    }

    /** The header's JSON mutated and re-framed (length right, or off by a little), or raw bytes near the front. */
    static byte[] mutateSafetensors(byte[] file, Random random) {
        long headerLength = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        byte[] data = Arrays.copyOfRange(file, (int) (8 + headerLength), file.length);
        switch (random.nextInt(4)) {
            case 0 -> {
                byte[] front = mutateBytes(Arrays.copyOf(file, (int) Math.min(file.length, 8 + headerLength + 16)), random);
                byte[] out = Arrays.copyOf(front, front.length + file.length - Math.min(file.length, (int) (8 + headerLength + 16)));
                System.arraycopy(file, (int) Math.min(file.length, 8 + headerLength + 16), out, front.length,
                        file.length - (int) Math.min(file.length, 8 + headerLength + 16));
                return out;
            }
            case 1 -> {
                return Arrays.copyOf(file, random.nextInt(file.length));
            }
            default -> {
                String header = new String(file, 8, (int) headerLength, StandardCharsets.UTF_8);
                byte[] json = mutateJson(header.strip(), random).getBytes(StandardCharsets.UTF_8);
                long claimed = random.nextInt(3) == 0 ? json.length + random.nextInt(5) - 2 : json.length;
                ByteBuffer out = ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
                out.putLong(claimed).put(json).put(data);
                return out.array();
            }
        }
    }

    /** Bytes changed where they matter: the pickle (the zip's first entry), the directory at the end, or anywhere. */
    static byte[] mutateTorchBin(byte[] file, Random random) {
        byte[] b = file.clone();
        int region = random.nextInt(3);
        int from = region == 0 ? 0 : region == 1 ? Math.max(0, b.length - 2048) : 0;
        int to = region == 0 ? Math.min(b.length, 2048) : b.length;
        if (random.nextInt(4) == 0) return mutateBytes(b, random);
        for (int k = 0; k < 1 + random.nextInt(6); k++) {
            int pos = from + random.nextInt(to - from);
            b[pos] = random.nextBoolean() ? (byte) random.nextInt(256) : (byte) (b[pos] ^ (1 << random.nextInt(8)));
        }
        return b;
    }

    private static byte[] splice(byte[] b, int pos, byte[] insert) {
        byte[] out = new byte[b.length + insert.length];
        System.arraycopy(b, 0, out, 0, pos);
        System.arraycopy(insert, 0, out, pos, insert.length);
        System.arraycopy(b, pos, out, pos + insert.length, b.length - pos);
        return out;
    }

    // ---- checks ------------------------------------------------------------------------------------

    /** No temporary files or directories left behind; an output safetensors file that exists is whole. */
    private static void assertNothingHalfWritten(Path caseDir, String what) throws IOException {
        Path out = caseDir.resolve("out");
        if (!Files.exists(out)) return;
        try (Stream<Path> walk = Files.walk(out)) {
            for (Path p : walk.toList()) {
                assertFalse(p.getFileName().toString().startsWith("."), "left behind " + p + ": " + what);
                if (p.toString().endsWith(".safetensors")) {
                    try (SafetensorsFile f = SafetensorsFile.open(p)) {
                        assertFalse(f.names().isEmpty(), "empty " + p + ": " + what);
                    }
                }
            }
        }
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
