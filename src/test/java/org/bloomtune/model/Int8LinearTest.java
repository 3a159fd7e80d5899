package org.bloomtune.model;

import org.bloomtune.tensor.HeapOutsideTheJvm;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tensor.shim.AtenShim;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each int8 mode against the dequantized float layer, and LLM.int8 against a plain-Java second implementation. */
class Int8LinearTest {
    static final int M = 7, K = 96, N = 40;

    @Test
    void wordEmbeddingRowsAreTheDequantizedMatrixBlockByBlock() {
        try (PointerScope scope = new PointerScope()) {
            long vocab = 1000;
            torch.manual_seed(3);
            Int8Weight w = Int8Weight.quantize(torch.randn(vocab, 16));
            Int8WordEmbedding e = new Int8WordEmbedding(w, Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY)), ScalarType.Float);
            Tensor whole = w.dequantize(ScalarType.Float);
            for (long start = 0; start < vocab; start += 384) {                    // three blocks, the last partial
                long n = Math.min(384, vocab - start);
                assertTrue(e.rows(start, n).equal(whole.narrow(0, start, n)), "rows " + start + "+" + n);
            }
            assertTrue(e.lookup(Tensors.fromLongs(new long[]{0, 999, 5}, 3)).equal(whole.index_select(0,
                    Tensors.fromLongs(new long[]{0, 999, 5}, 3))), "lookup equals the dequantized rows");
        }
    }

    @Test
    void quantizationIsPerOutputChannelAbsmax() {
        float[] w = {1, -2, 0.5f, 4, 0.25f, -0.125f};
        try (Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(w, 2, 3))) {
            assertArrayEquals(new float[]{2 / 127f, 4 / 127f}, Tensors.toFloats(q.scales()), 1e-9f);
            assertArrayEquals(new long[]{64, -127, 32, 127, 8, -4}, Tensors.toLongs(q.values()));
        }
    }

    /**
     * A checkpoint's weight as loaded (float32, bfloat16, or float16 as the hub ships BLOOM)
     * quantized by the native kernel gives the bits of the libtorch op chain: rows of one value, a
     * zero row, float16 subnormals and float16's largest values, scales spread over six decades.
     */
    @Test
    void nativeWeightQuantizationEqualsTheOpChainInEveryCheckpointDtype() {
        int out = 37, in = 300;
        Random r = new Random(17);
        float[] w = new float[out * in];
        for (int o = 0; o < out; o++) {
            double scale = Math.pow(10, -5 + o % 7);                                   // 1e-5 … 10
            for (int i = 0; i < in; i++) w[o * in + i] = (float) (r.nextGaussian() * scale);
        }
        java.util.Arrays.fill(w, 3 * in, 4 * in, 0f);                                  // all zero: the 1e-12 floor
        java.util.Arrays.fill(w, 5 * in, 6 * in, -0.75f);                              // one value: every entry -127
        w[8 * in] = 65504f;                                                            // float16's largest, both signs
        w[8 * in + 1] = -65504f;
        w[9 * in] = 6e-8f;                                                             // float16 subnormals only
        w[9 * in + 1] = -3e-6f;
        for (ScalarType type : new ScalarType[]{ScalarType.Float, ScalarType.BFloat16, ScalarType.Half}) {
            try (PointerScope scope = new PointerScope()) {
                Tensor weight = Tensors.fromFloats(w, out, in).to(type);
                assertTrue(org.bloomtune.kernels.Int8Quantize.accepts(weight), type + " goes to the native kernel");
                Int8Weight fused = Int8Weight.quantize(weight);
                Int8Weight chain = Int8Weight.quantizeByBlocks(weight);
                assertArrayEquals(Tensors.toFloats(chain.scales()), Tensors.toFloats(fused.scales()), type + " scales");
                assertArrayEquals(Tensors.toLongs(chain.values()), Tensors.toLongs(fused.values()), type + " values");
                assertEquals(out, fused.scales().dim() == 1 ? fused.scales().size(0) : -1, "scales are [out]");
            }
        }
    }

    @Test
    void everyModeMatchesTheDequantizedLayer() {
        float[] x = activations(new Random(1), 2);
        float[] w = random(new Random(2), N * K, 0.05f);
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(w, N, K));
            Tensor input = Tensors.fromFloats(x, M, K);
            Tensor reference = input.matmul(q.dequantize(ScalarType.Float).t());
            double scale = maxAbs(Tensors.toFloats(reference));
            double weightOnly = maxDiff(Tensors.toFloats(q.matmul(input, Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY)), null)), Tensors.toFloats(reference));
            double dequant = maxDiff(Tensors.toFloats(q.matmul(input, Int8Kernel.of(Int8Options.of(Int8Mode.DEQUANTIZE)), null)), Tensors.toFloats(reference));
            double llm = maxDiff(Tensors.toFloats(q.matmul(input, Int8Kernel.of(Int8Options.of(Int8Mode.LLM_INT8)), null)), Tensors.toFloats(reference));
            System.out.printf("vs dequantized layer, relative max-abs: weight-only %.1e, dequantize %.1e, llm-int8 %.1e%n",
                    weightOnly / scale, dequant / scale, llm / scale);
            assertTrue(weightOnly <= 1e-5 * scale && dequant <= 1e-6 * scale, "weight-only / dequantize drift");
            assertTrue(llm <= 2e-2 * scale, "LLM.int8 error " + llm / scale);
        }
    }

    @Test
    void weightOnlyKernelPathsMatchTheDequantizedLayer() {
        float[] w = random(new Random(8), N * K, 0.05f);
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(w, N, K));
            // One float32 row (a decode step): the weight dequantized block by block; a bfloat16 batch: _weight_int8pack_mm.
            Tensor row = Tensors.fromFloats(random(new Random(9), K, 1f), 1, K);
            float[] expected = Tensors.toFloats(row.matmul(q.dequantize(ScalarType.Float).t()));
            assertTrue(maxDiff(Tensors.toFloats(q.matmul(row, Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY)), null)), expected) <= 1e-5 * maxAbs(expected));
            Tensor batch = Tensors.fromFloats(random(new Random(10), M * K, 1f), M, K).to(ScalarType.BFloat16);
            float[] bf16 = Tensors.toFloats(q.matmul(batch, Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY)), null));
            float[] reference = Tensors.toFloats(batch.to(ScalarType.Float).matmul(q.dequantize(ScalarType.Float).t()));
            assertTrue(maxDiff(bf16, reference) <= 2e-2 * maxAbs(reference), "bf16 weight-only error");
            // 1000 rows of 2048: 128-row blocks of 1 MiB, the last one partial
            Int8Weight tall = Int8Weight.quantize(Tensors.fromFloats(random(new Random(11), 1000 * 2048, 0.05f), 1000, 2048));
            Tensor wide = Tensors.fromFloats(random(new Random(12), 2048, 1f), 1, 2048);
            float[] tallExpected = Tensors.toFloats(wide.matmul(tall.dequantize(ScalarType.Float).t()));
            float[] tallGot = Tensors.toFloats(tall.matmul(wide, Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY)), null));
            assertEquals(1000, tallGot.length);
            assertTrue(maxDiff(tallGot, tallExpected) <= 1e-5 * maxAbs(tallExpected), "blocked one-row path");
        }
    }

    @Test
    void llmInt8EqualsAPlainJavaImplementation() {
        float[] x = activations(new Random(3), 3);
        float[] w = random(new Random(4), N * K, 0.05f);
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(w, N, K));
            float[] ours = Tensors.toFloats(q.matmul(Tensors.fromFloats(x, M, K), Int8Kernel.of(Int8Options.of(Int8Mode.LLM_INT8)), null));
            float[] expected = llmInt8Reference(x, Tensors.toLongs(q.values()), Tensors.toFloats(q.scales()), 6.0);
            assertTrue(maxDiff(ours, expected) <= 1e-4 * maxAbs(expected), "LLM.int8 differs from the Java reference");
            // With threshold 0 nothing is an outlier: the whole activation is quantized.
            float[] noOutliers = Tensors.toFloats(q.matmul(Tensors.fromFloats(x, M, K), Int8Kernel.of(new Int8Options(Int8Mode.LLM_INT8, 0)), null));
            float[] expected0 = llmInt8Reference(x, Tensors.toLongs(q.values()), Tensors.toFloats(q.scales()), 0);
            assertTrue(maxDiff(noOutliers, expected0) <= 1e-4 * maxAbs(expected0));
        }
    }

    @Test
    void llmInt8ByRowBlocksFromFloatAndBfloat16() {
        int m = 150, k = 32, n = 40000;                     // wide rows: the product goes a block of rows at a time
        assertTrue(LlmInt8.accumulatorRows(m, n) * 2 < m, "the test should span several row blocks");
        Random r = new Random(5);
        float[] x = random(r, m * k, 1f);
        for (int row = 0; row < m; row++) x[row * k + 3] *= 12f;             // one outlier column
        float[] w = random(r, n * k, 0.05f);
        Int8Kernel llm = Int8Kernel.of(Int8Options.of(Int8Mode.LLM_INT8));
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(w, n, k));
            float[] expected = llmInt8Reference(x, Tensors.toLongs(q.values()), Tensors.toFloats(q.scales()), 6.0, m, k, n);
            float[] ours = Tensors.toFloats(llm.multiply(Tensors.fromFloats(x, m, k), q));
            assertTrue(maxDiff(ours, expected) <= 1e-4 * maxAbs(expected), "LLM.int8 by row blocks differs from the Java reference");
            // bfloat16 activations (no outliers: rescaled straight into bfloat16) equal their float32 copy's result, rounded once
            for (int row = 0; row < m; row++) x[row * k + 3] /= 12f;
            Tensor bf16 = Tensors.fromFloats(x, m, k).to(ScalarType.BFloat16);
            Tensor fromBf16 = llm.multiply(bf16, q);
            Tensor fromFloat = llm.multiply(bf16.to(ScalarType.Float), q).to(ScalarType.BFloat16);
            assertTrue(torch.equal(fromBf16, fromFloat), "bfloat16 activations give other numbers than their float32 copy");
        }
    }

    /**
     * Nine to sixteen rows — a server's decode batch — go through the row kernels eight at a time
     * (RowSplit.inGroups): LLM.int8 against the plain Java implementation (its outlier columns found over
     * all the rows, as one call finds them), weight-only against the dequantized layer.
     */
    @Test
    void nineToSixteenRowsEqualTheReferences() {
        int k = 256, n = 600;
        Random r = new Random(13);
        Int8Kernel llm = Int8Kernel.of(Int8Options.of(Int8Mode.LLM_INT8));
        Int8Kernel weightOnly = Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY));
        try (PointerScope scope = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(random(r, n * k, 0.05f), n, k));
            for (int m : new int[]{9, 12, 16}) {
                float[] x = random(r, m * k, 1f);
                x[(m - 1) * k + 5] = 40f;                                    // an outlier column, in the last chunk only
                float[] expected = llmInt8Reference(x, Tensors.toLongs(q.values()), Tensors.toFloats(q.scales()), 6.0, m, k, n);
                float[] ours = Tensors.toFloats(llm.multiply(Tensors.fromFloats(x, m, k), q));
                assertTrue(maxDiff(ours, expected) <= 1e-4 * maxAbs(expected), m + " rows: LLM.int8 differs from the Java reference");
                Tensor rows = Tensors.fromFloats(x, m, k);
                float[] dequantized = Tensors.toFloats(rows.matmul(q.dequantize(ScalarType.Float).t()));
                assertTrue(maxDiff(Tensors.toFloats(weightOnly.multiply(rows, q)), dequantized) <= 1e-5 * maxAbs(dequantized), m + " rows: weight-only float32");
                Tensor bf16 = rows.to(ScalarType.BFloat16);
                float[] fromBf16 = Tensors.toFloats(bf16.to(ScalarType.Float).matmul(q.dequantize(ScalarType.Float).t()));
                assertTrue(maxDiff(Tensors.toFloats(weightOnly.multiply(bf16, q)), fromBf16) <= 2e-2 * maxAbs(fromBf16), m + " rows: weight-only bfloat16");
            }
        }
    }

    @Test
    void recordingForwardDequantizesAndGivesTheInputGradient() {
        float[] x = activations(new Random(5), 0);
        float[] w = random(new Random(6), N * K, 0.05f);
        try (PointerScope scope = new PointerScope()) {
            Int8Weight q = Int8Weight.quantize(Tensors.fromFloats(w, N, K));
            Int8Linear layer = new Int8Linear(q, torch.zeros(N), Int8Kernel.of(Int8Options.of(Int8Mode.WEIGHT_ONLY)));
            Tensor input = Tensors.fromFloats(x, M, K);
            input.requires_grad_(true);
            layer.forward(input).sum().backward();
            // d sum(x Wᵀ) / dx = column sums of W, for every row.
            float[] colSums = Tensors.toFloats(q.dequantize(ScalarType.Float).sum(new long[]{0}, false, new org.bytedeco.pytorch.ScalarTypeOptional()));
            float[] grad = Tensors.toFloats(Tensors.gradient(input));
            for (int m = 0; m < M; m++) {
                for (int k = 0; k < K; k++) assertEquals(colSums[k], grad[m * K + k], 1e-5);
            }
        }
    }

    @Test
    void shimRejectsBadArgumentsBeforeNativeCode() {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = torch.randn(4, 8);
            Tensor w8 = torch.zeros(new long[]{5, 8}, new TensorOptions(ScalarType.Char));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AtenShim.weightInt8PackMm(x, w8.to(ScalarType.Float), torch.ones(5)));
            assertTrue(e.getMessage().startsWith("_weight_int8pack_mm: weight must be a contiguous int8"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AtenShim.weightInt8PackMm(x, w8, torch.ones(4)));
            assertTrue(e.getMessage().contains("scales must be [5]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AtenShim.weightInt8PackMm(torch.randn(4, 7), w8, torch.ones(5)));
            assertTrue(e.getMessage().contains("x is [M, 7] but weight is [N, 8]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AtenShim.weightInt8PackMm(x.t(), w8, torch.ones(5)));
            assertTrue(e.getMessage().contains("contiguous 2-D"), e.getMessage());
        }
    }

    @Test
    void shimResultsAreFreedExactlyOnce() {
        try (PointerScope outer = new PointerScope(); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off()) {
            Int8Weight q = Int8Weight.quantize(torch.randn(512, 512));
            Tensor x = torch.randn(64, 512);
            for (int i = 0; i < 50; i++) run(q, x);
            // The C heap outside the JVM's own mallocs, not RSS: RSS also moves with the Java heap,
            // which has nothing to do with this.
            long before = HeapOutsideTheJvm.bytes();
            for (int i = 0; i < 2000; i++) run(q, x);   // 2000 × 128 KiB results: 250 MiB if leaked
            long growth = HeapOutsideTheJvm.bytes() - before;
            assertTrue(growth < 16L << 20, "native heap grew by " + growth / 1048576 + " MiB over 2000 shim calls");
        }
    }

    @Test
    void badInt8OptionsAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Int8Options(Int8Mode.LLM_INT8, -1));
        assertTrue(e.getMessage().contains("threshold must be a finite number >= 0"));
        e = assertThrows(IllegalArgumentException.class, () -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.WEIGHT_ONLY)).withDevice("cuda"));
        assertTrue(e.getMessage().contains("has a CPU kernel only"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.LLM_INT8))
                .withDtype(org.bloomtune.tensor.DType.F64));
        assertTrue(e.getMessage().contains("not fp64"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Int8Mode.parse("int4"));
    }

    private static void run(Int8Weight q, Tensor x) {
        try (PointerScope scope = new PointerScope()) {
            AtenShim.weightInt8PackMm(x, q.values(), q.scales());
        }
    }

    /** bitsandbytes' algorithm written out in plain Java: outlier columns in float, the rest int8 × int8. */
    static float[] llmInt8Reference(float[] x, long[] w8, float[] wScale, double threshold) {
        return llmInt8Reference(x, w8, wScale, threshold, M, K, N);
    }

    /** The same for x [M, K] and a weight [N, K] of any size. */
    static float[] llmInt8Reference(float[] x, long[] w8, float[] wScale, double threshold, int M, int K, int N) {
        boolean[] outlier = new boolean[K];
        for (int k = 0; k < K; k++) {
            for (int m = 0; m < M; m++) if (threshold > 0 && Math.abs(x[m * K + k]) >= threshold) outlier[k] = true;
        }
        float[] y = new float[M * N];
        for (int m = 0; m < M; m++) {
            float rowMax = 0;
            for (int k = 0; k < K; k++) if (!outlier[k]) rowMax = Math.max(rowMax, Math.abs(x[m * K + k]));
            float rowScale = Math.max(rowMax / 127f, 1e-12f);
            long[] x8 = new long[K];
            for (int k = 0; k < K; k++) x8[k] = outlier[k] ? 0 : Math.max(-127, Math.min(127, Math.round(Math.rint(x[m * K + k] / rowScale))));
            for (int n = 0; n < N; n++) {
                long acc = 0;
                double out = 0;
                for (int k = 0; k < K; k++) {
                    acc += x8[k] * w8[n * K + k];
                    if (outlier[k]) out += (double) x[m * K + k] * w8[n * K + k] * wScale[n];
                }
                y[m * N + n] = (float) (acc * (double) rowScale * wScale[n] + out);
            }
        }
        return y;
    }

    /** Activations around ±1 with {@code outliers} columns scaled past the 6.0 threshold. */
    static float[] activations(Random r, int outliers) {
        float[] x = random(r, M * K, 1f);
        for (int o = 0; o < outliers; o++) {
            int col = 5 + 17 * o;
            for (int m = 0; m < M; m++) x[m * K + col] *= 12f;
        }
        return x;
    }

    static float[] random(Random r, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian() * std;
        return a;
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }
}
