package org.bloomtune.model;

import org.bloomtune.kernels.LlmInt8Rows;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LLM.int8's one-call decode product (native/llm_int8_rows_linear.c) against the op-by-op path
 * (quantize, int8 product, rescale, index_select + addmm for the outliers) and bitsandbytes'
 * algorithm in plain Java, for every row count it takes, float32 and bfloat16 activations, with
 * and without outlier columns and a bias, at widths that leave partial vectors, int32 blocks and thread ranges.
 */
class LlmInt8RowsTest {

    @Test
    void equalsTheOpByOpPathAndTheJavaReference() {
        // Without the native kernels (a CPU without AVX2) LlmInt8.matmul takes the op-by-op path and the
        // same assertions hold against it and the Java reference; on this project's CI machine the kernel runs.
        boolean nativeKernel = LlmInt8Rows.applies(torch.randn(1, 64), torch.zeros(new long[]{2, 64}).to(ScalarType.Char), torch.ones(2));
        System.out.println("LLM.int8 decode rows: " + (nativeKernel ? "native kernel" : "op-by-op fallback (no native kernel on this CPU)"));
        Random r = new Random(11);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            for (int[] shape : new int[][]{{1027, 1001}, {67, 130}, {3, 5}, {600, 4096}}) {
                int n = shape[0], k = shape[1];
                Int8Weight w = Int8Weight.quantize(Tensors.fromFloats(Int8LinearTest.random(r, n * k, 0.05f), n, k));
                Tensor bias = Tensors.fromFloats(Int8LinearTest.random(r, n, 0.5f), n);
                long[] w8 = Tensors.toLongs(w.values());
                float[] wScale = Tensors.toFloats(w.scales());
                for (int rows = 1; rows <= LlmInt8Rows.MAX_ROWS; rows++) {
                    for (boolean outliers : new boolean[]{false, true}) {
                        float[] x = Int8LinearTest.random(r, rows * k, 1f);
                        if (outliers) for (int m = 0; m < rows; m++) x[m * k + k / 2] *= 12f;     // one column past 6.0
                        String what = n + "×" + k + ", " + rows + " rows" + (outliers ? ", an outlier column" : "");
                        Tensor xf = Tensors.fromFloats(x, rows, k);
                        Tensor ours = LlmInt8.matmul(xf, w, 6.0, null);
                        Tensor opByOp = LlmInt8.opByOp(xf, w, 6.0);
                        if (outliers) assertClose(Tensors.toFloats(opByOp), Tensors.toFloats(ours), 1e-6, what);
                        else assertTrue(torch.equal(ours, opByOp), what + ": the integer path must agree bit for bit");
                        assertClose(Int8LinearTest.llmInt8Reference(x, w8, wScale, 6.0, rows, k, n), Tensors.toFloats(ours), 1e-4, what + " vs Java");

                        Tensor withBias = LlmInt8.matmul(xf, w, 6.0, bias);
                        if (outliers) assertClose(Tensors.toFloats(opByOp.add(bias)), Tensors.toFloats(withBias), 1e-6, what + " + bias");
                        else assertTrue(torch.equal(withBias, opByOp.add(bias)), what + " + bias: one pass or an add after, the same bits");

                        Tensor xb = xf.to(ScalarType.BFloat16);
                        Tensor oursB = LlmInt8.matmul(xb, w, 6.0, null);
                        assertTrue(oursB.scalar_type().value == ScalarType.BFloat16.value, "bfloat16 in, bfloat16 out");
                        Tensor opByOpB = LlmInt8.opByOp(xb, w, 6.0);
                        Tensor biasB = bias.to(ScalarType.BFloat16);
                        Tensor withBiasB = LlmInt8.matmul(xb, w, 6.0, biasB);
                        if (outliers) {
                            assertClose(Tensors.toFloats(opByOpB.to(ScalarType.Float)), Tensors.toFloats(oursB.to(ScalarType.Float)), 8e-3, what + " bf16");
                            assertClose(Tensors.toFloats(opByOpB.add(biasB).to(ScalarType.Float)), Tensors.toFloats(withBiasB.to(ScalarType.Float)), 8e-3, what + " bf16 + bias");
                        } else {
                            assertTrue(torch.equal(oursB, opByOpB), what + " bf16: the integer path must agree bit for bit");
                            assertTrue(torch.equal(withBiasB, opByOpB.add(biasB)), what + " bf16 + bias: rounded as an add after");
                        }
                    }
                }
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor values = torch.zeros(new long[]{16, 64}).to(ScalarType.Char);
            Tensor scales = torch.ones(16);
            assertFalse(LlmInt8Rows.applies(torch.randn(LlmInt8Rows.MAX_ROWS + 1, 64), values, scales), "a prefill's rows");
            assertFalse(LlmInt8Rows.applies(torch.randn(1, 32), values, scales), "width mismatch");
            assertFalse(LlmInt8Rows.applies(torch.randn(1, 64).to(ScalarType.Double), values, scales), "float64 input");
            assertFalse(LlmInt8Rows.applies(torch.randn(1, 64), values, torch.ones(15)), "scale count");
            assertFalse(LlmInt8Rows.applies(torch.randn(1, 64), values.to(ScalarType.Float), scales), "a float weight");
            assertFalse(LlmInt8Rows.applies(torch.randn(1, 64), values.t().contiguous().t(), scales.narrow(0, 0, 16)), "a transposed weight");
        }
    }

    /** Every element within {@code relative} of the largest expected magnitude. */
    private static void assertClose(float[] expected, float[] actual, double relative, String what) {
        double bound = relative * Int8LinearTest.maxAbs(expected);
        double diff = Int8LinearTest.maxDiff(actual, expected);
        assertTrue(diff <= bound, what + ": max difference " + diff + " > " + bound);
    }
}
