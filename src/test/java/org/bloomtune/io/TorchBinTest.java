package org.bloomtune.io;

import org.bloomtune.Reference;
import org.bloomtune.io.TorchBinWriter;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * pytorch_model.bin without libtorch's pickle loader: the reference file PyTorch wrote gives the
 * safetensors logits; files the Java writer makes (fp16, bf16, strided views, shared storages,
 * ZIP64, past 4 GiB) read back exactly; and damaged or hostile files are refused by name.
 */
class TorchBinTest {
    @TempDir
    Path dir;

    @Test
    void theReferenceBinGivesTheSafetensorsLogitsAndSharesTheTiedStorage() {
        Map<String, Tensor> g = Reference.read(Reference.reference("hf/a/goldens.safetensors"));
        Tensor ids = g.get("inputs.lp.input_ids");
        Tensor mask = g.get("inputs.lp.attention_mask");
        try (BloomModel bin = BloomModel.load(Reference.reference("hf/a/model-bin"));
             BloomModel st = BloomModel.load(Reference.reference("hf/a/model"));
             GradMode off = GradMode.off();
             CausalLmOutput a = bin.forward(CausalLmInput.ids(ids).mask(mask));
             CausalLmOutput b = st.forward(CausalLmInput.ids(ids).mask(mask))) {
            assertEquals(0.0, Reference.maxAbsDiff(a.logits(), b.logits()), "identical weights, identical logits");
            assertTrue(Reference.maxAbsDiff(a.logits(), g.get("base.lp.logits")) <= 1e-4);
            assertTrue(bin.viewsMappedFile(), "the fp32 .bin loads as views of the mapping, as safetensors do");
        }
        try (TorchBinWeights w = TorchBinWeights.read(Reference.reference("hf/a/model-bin/pytorch_model.bin"))) {
            assertEquals(30, w.names().size());
            assertEquals(w.views().get("lm_head.weight").bytes().address(),
                    w.views().get("transformer.word_embeddings.weight").bytes().address(), "the tied lm_head shares the embedding's storage");
        }
    }

    @Test
    void anFp16BinGivesTheLogitsOfTheSameWeightsInSafetensors() throws IOException {
        Path st = dir.resolve("fp16-safetensors");
        CheckpointConverter.convert(Reference.reference("hf/a/model"), st, DType.F16, CheckpointConverter.DEFAULT_SHARD_BYTES);
        Path bin = Files.createDirectories(dir.resolve("fp16-bin"));
        Files.copy(st.resolve("config.json"), bin.resolve("config.json"));
        java.util.List<Tensor> keep = new java.util.ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(st.resolve("model.safetensors"))) {
            TorchBinWriter w = new TorchBinWriter();
            for (String n : f.names()) {
                Tensor t = f.copy(n);
                keep.add(t);
                w.tensor(n, t);
            }
            w.write(bin.resolve("pytorch_model.bin"));
        } finally {
            keep.forEach(Tensor::close);
        }
        try (TorchBinWeights w = TorchBinWeights.read(bin.resolve("pytorch_model.bin"))) {
            assertTrue(w.names().stream().allMatch(n -> w.dtype(n) == DType.F16));
        }
        Reference.assertSameLogits(bin, st);
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {2, 4, 5})
    void filesTheRealTorchSaveWroteReadAsPyTorchReadsThem(int protocol) throws IOException {
        Path dirOf = Reference.reference("torch-saved");
        com.google.gson.JsonObject expected = Json.readObject(dirOf.resolve("expected.json"));
        try (TorchBinWeights w = TorchBinWeights.read(dirOf.resolve("protocol" + protocol + ".bin"))) {
            assertEquals(expected.keySet(), w.names());
            for (String name : expected.keySet()) {
                com.google.gson.JsonObject e = expected.getAsJsonObject(name);
                try (Tensor t = w.get(name)) {
                    assertEquals(e.get("dtype").getAsString(), "torch." + torchName(DType.of(t.scalar_type())), name);
                    long[] shape = new long[e.getAsJsonArray("shape").size()];
                    for (int i = 0; i < shape.length; i++) shape[i] = e.getAsJsonArray("shape").get(i).getAsLong();
                    assertArrayEquals(shape, Tensors.shape(t), name);
                    float[] values = Tensors.toFloats(t);
                    for (int i = 0; i < values.length; i++) assertEquals(e.getAsJsonArray("values").get(i).getAsFloat(), values[i], name + "[" + i + "]");
                }
            }
            assertEquals(w.views().get("transposed").storageBytes().address(), w.views().get("tail").storageBytes().address());
        }
    }

    private static String torchName(DType d) {
        return switch (d) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case I64 -> "int64";
            default -> d.name();
        };
    }

    @Test
    void writtenFilesReadBackExactly() {
        Path file = dir.resolve("pytorch_model.bin");
        try (Tensor f32 = Tensors.fromFloats(new float[]{1, 2, 3, 4, 5, 6}, 2, 3);
             Tensor f16 = f32.to(ScalarType.Half); Tensor bf16 = f32.to(ScalarType.BFloat16);
             Tensor base = Tensors.fromFloats(new float[]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 12)) {
            new TorchBinWriter().folder("pytorch_model")
                    .tensor("a.f32", f32).tensor("a.f16", f16).tensor("a.bf16", bf16)
                    .storage("shared", DType.F32, 12, () -> base.contiguous())
                    .view("transposed", "shared", 0, new long[]{3, 4}, new long[]{1, 3})          // a [4, 3] block read column-wise
                    .view("tail", "shared", 8, new long[]{4}, new long[]{1})
                    .view("scalar", "shared", 5, new long[0], new long[0])
                    .write(file);
        }
        try (TorchBinWeights w = TorchBinWeights.read(file)) {
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, Tensors.toFloats(w.get("a.f32")));
            assertEquals(ScalarType.Half.value, w.get("a.f16").scalar_type().value);
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, Tensors.toFloats(w.get("a.f16")));
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, Tensors.toFloats(w.get("a.bf16")));
            assertArrayEquals(new float[]{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11}, Tensors.toFloats(w.get("transposed")));
            assertArrayEquals(new float[]{8, 9, 10, 11}, Tensors.toFloats(w.get("tail")));
            assertArrayEquals(new float[]{5}, Tensors.toFloats(w.get("scalar")));
            assertEquals(w.views().get("transposed").storageBytes().address(), w.views().get("tail").storageBytes().address());
        }
    }

    @Test
    void zip64RecordsAndOffsetsPastFourGibibytes() throws IOException {
        Path small = dir.resolve("zip64.bin");
        try (Tensor t = Tensors.fromFloats(new float[]{7, 8}, 2)) {
            new TorchBinWriter().forceZip64(true).tensor("t", t).write(small);
        }
        try (TorchBinWeights w = TorchBinWeights.read(small)) {
            assertArrayEquals(new float[]{7, 8}, Tensors.toFloats(w.get("t")));
        }
        // 4.5 GB of zeros as a hole in a sparse file, then a tensor whose bytes start past 4 GiB.
        Path big = dir.resolve("big.bin");
        long zeros = 1_125_000_000L;
        try (Tensor t = Tensors.fromFloats(new float[]{3, 1, 4, 1, 5}, 5)) {
            new TorchBinWriter().storage("zeros", DType.F32, zeros, null).view("big", "zeros", 0, new long[]{zeros}, new long[]{1})
                    .tensor("after", t).write(big);
        }
        assertTrue(Files.size(big) > 4L << 30);
        try (TorchBinWeights w = TorchBinWeights.read(big)) {
            assertTrue(w.views().get("after").bytes().address() - w.views().get("big").bytes().address() > 4L << 30);
            assertArrayEquals(new float[]{3, 1, 4, 1, 5}, Tensors.toFloats(w.get("after")));
            try (Tensor b = w.get("big"); Tensor last = b.narrow(0, zeros - 3, 3)) {
                assertArrayEquals(new float[3], Tensors.toFloats(last));
            }
        }
        Files.delete(big);
    }

    @Test
    void hostileOrDamagedFilesAreRefusedByName() throws IOException {
        Path good = dir.resolve("good.bin");
        try (Tensor t = Tensors.fromFloats(new float[]{1, 2, 3, 4}, 4)) {
            new TorchBinWriter().tensor("w", t).write(good);
        }
        byte[] pkl = entryBytes(good, "archive/data.pkl");
        // A pickle that would run a shell command under Python's pickle.load.
        byte[] evil = "\u0080\u0002cos\nsystem\nX\u0006\u0000\u0000\u0000whoami\u0085R.".getBytes(StandardCharsets.ISO_8859_1);
        assertRefused(zip(dir.resolve("evil.bin"), Map.of("archive/data.pkl", evil)), "the pickle names the global os.system");
        byte[] ok = Files.readAllBytes(good);
        assertRefused(write(dir.resolve("cut.bin"), Arrays.copyOf(ok, ok.length - 30)), "no zip end record");
        assertRefused(zip(dir.resolve("missing.bin"), Map.of("archive/data.pkl", pkl)), "refers to storage 0, which the zip lacks (archive/data/0)");
        assertRefused(zip(dir.resolve("short.bin"), Map.of("archive/data.pkl", pkl, "archive/data/0", new byte[8])),
                "storage 0 holds 8 bytes, fewer than its 4 F32 elements need");
        try (Tensor t = Tensors.fromFloats(new float[]{1, 2, 3, 4}, 4)) {
            Path past = dir.resolve("past.bin");
            new TorchBinWriter().storage("s", DType.F32, 4, () -> t.contiguous()).view("w", "s", 2, new long[]{3}, new long[]{1}).write(past);
            assertRefused(past, "tensor 'w' [3] at offset 2 with strides [1] reaches past the end of its storage of 4 elements");
        }
        assertRefused(write(dir.resolve("bomb.bin"), endRecord(65535, 46L * 65535, 0)), "does not fit the file");
        assertRefused(write(dir.resolve("compressed.bin"), deflated()), "is compressed (method 8)");
        assertRefused(zip(dir.resolve("list.bin"), Map.of("archive/data.pkl", "\u0080\u0002]q\u0000.".getBytes(StandardCharsets.ISO_8859_1))),
                "data.pkl holds no dict of tensors");
    }

    private static void assertRefused(Path file, String reason) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TorchBinWeights.read(file).close());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(reason), "expected '" + reason + "' in: " + e.getMessage());
    }

    private static Path write(Path p, byte[] bytes) throws IOException {
        Files.write(p, bytes);
        return p;
    }

    /** A zip of STORED entries, as torch.save writes, but with whatever entries the test wants. */
    private static Path zip(Path file, Map<String, byte[]> entries) throws IOException {
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream z = new ZipOutputStream(os)) {
            for (Map.Entry<String, byte[]> e : new java.util.TreeMap<>(entries).entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                entry.setMethod(ZipEntry.STORED);
                entry.setSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                entry.setCrc(crc.getValue());
                z.putNextEntry(entry);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return file;
    }

    private static byte[] deflated() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(b)) {
            z.putNextEntry(new ZipEntry("archive/data.pkl"));
            z.write(new byte[100]);
            z.closeEntry();
        }
        return b.toByteArray();
    }

    private static byte[] entryBytes(Path zip, String name) throws IOException {
        try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(zip.toFile())) {
            return z.getInputStream(z.getEntry(name)).readAllBytes();
        }
    }

    /** An end-of-central-directory record alone, claiming {@code count} entries. */
    private static byte[] endRecord(int count, long cdSize, long cdOffset) {
        return ByteBuffer.allocate(22).order(ByteOrder.LITTLE_ENDIAN).putInt(0x06054b50).putShort((short) 0).putShort((short) 0)
                .putShort((short) count).putShort((short) count).putInt((int) cdSize).putInt((int) cdOffset).putShort((short) 0).array();
    }

    static {
        torch.manual_seed(0);
    }
}
