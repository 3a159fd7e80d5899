package org.bloomtune.kernels;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Int8RowsLinearTest {
    /**
     * Against the float64 product of the dequantized weight: a float32 sum of k products errs by at
     * most about k · 2^-24 of the sum of their magnitudes, and a bfloat16 result adds its own
     * rounding. Odd sizes exercise every tail: k not a
     * multiple of 8 or 32, out not of 4 or 8, row counts that fill a block of four rows of x or not. On a CPU without AVX2/FMA the kernel must
     * refuse every call.
     */
    @Test
    void fewRowsEqualTheDequantizedProductToFloatRounding() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(5);
            for (long[] shape : new long[][]{{1027, 1001}, {8, 64}, {250, 4096}, {3, 5}}) {
                Tensor values = torch.randint(-127, 128, new long[]{shape[0], shape[1]}).to(ScalarType.Char);
                Tensor scales = torch.rand(shape[0]).mul(new Scalar(0.02)).add(new Scalar(1e-3));
                Tensor weight = values.to(ScalarType.Double).mul(scales.to(ScalarType.Double).unsqueeze(1));
                for (ScalarType type : new ScalarType[]{ScalarType.Float, ScalarType.BFloat16}) {
                    int most = type == ScalarType.Float ? Int8RowsLinear.MAX_ROWS
                            : Int8RowsLinear.avx512Bf16Supported() ? Int8RowsLinear.MAX_AVX512_BF16_ROWS : Int8RowsLinear.MAX_BF16_ROWS;
                    for (int rows : new int[]{1, 2, 3, 4, 5, 7, most}) {
                        if (rows > most) continue;
                        Tensor x = torch.randn(rows, shape[1]).to(type);
                        if (!Int8RowsLinear.supported()) {
                            assertFalse(Int8RowsLinear.applies(x, values, scales), "no AVX2/FMA: libtorch's kernels");
                            continue;
                        }
                        assertTrue(Int8RowsLinear.applies(x, values, scales));
                        for (boolean avx512 : new boolean[]{true, false}) {
                            Tensor y = Int8RowsLinear.forward(x, values, scales, null, avx512);
                            assertArrayEquals(new long[]{rows, shape[0]}, y.sizes().vec().get());
                            assertEquals(type.value, y.scalar_type().value);
                            Tensor xd = x.to(ScalarType.Double);
                            Tensor exact = torch.linear(xd, weight);
                            // bfloat16 keeps 8 significant bits: its rounding adds 2^-8 of the value
                            double rounding = type == ScalarType.Float ? 0 : Math.pow(2, -8);
                            Tensor bound = torch.linear(xd.abs(), weight.abs()).mul(new Scalar(shape[1] * Math.pow(2, -24)))
                                    .add(exact.abs().mul(new Scalar(rounding)));
                            Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                            assertTrue(error.le(bound).all().item_bool(), shape[0] + "×" + shape[1] + ", " + rows + " rows of " + type
                                    + (avx512 ? "" : " (AVX2)") + ": max error " + error.max().item_double());
                            // The bias in the kernel's call: the bits of an add after it, in x's dtype.
                            Tensor bias = torch.randn(shape[0]).to(type);
                            if (Int8RowsLinear.takesBias(x, values, bias)) {
                                Tensor withBias = Int8RowsLinear.forward(x, values, scales, bias, avx512);
                                assertTrue(torch.equal(withBias, y.add(bias)), shape[0] + "×" + shape[1] + ", " + rows + " rows of " + type
                                        + (avx512 ? "" : " (AVX2)") + ": the bias in the call differs from an add after it");
                            } else {
                                assertTrue(type == ScalarType.BFloat16 && !Int8RowsLinear.avx512Bf16Supported(), "only float32-computed bfloat16 rows add after");
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * LLM.int8's product for a few rows equals {@code _int_mm}'s int32 result exactly (integer sums do
     * not depend on their order), on both instruction sets the CPU has: every row count each takes,
     * odd sizes (k not a multiple of 64 or 16, fewer than four weight rows) and extreme values — ±127
     * everywhere, the largest sums of either sign, where VNNI's offset sums x + 128 exceed int32.
     */
    @Test
    void int8ProductEqualsIntMmExactly() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(6);
            for (Int8RowsLinear.IntMmKernel kernel : Int8RowsLinear.IntMmKernel.values()) {
                boolean present = kernel == Int8RowsLinear.IntMmKernel.VNNI ? Int8RowsLinear.vnniSupported() : Int8RowsLinear.supported();
                int maxRows = kernel == Int8RowsLinear.IntMmKernel.VNNI ? Int8RowsLinear.MAX_VNNI_INT_MM_ROWS : Int8RowsLinear.MAX_INT_MM_ROWS;
                for (long[] shape : new long[][]{{1027, 1001}, {8, 64}, {250, 4096}, {3, 5}, {16, 8192}, {7, 130}}) {
                    // The whole int8 range, −128 too: the 2–8-row VNNI kernel flips the weight's top bit, the others x's.
                    Tensor values = torch.randint(-128, 128, new long[]{shape[0], shape[1]}).to(ScalarType.Char);
                    for (int rows = 1; rows <= maxRows; rows++) {
                        Tensor x = torch.randint(-128, 128, new long[]{rows, shape[1]}).to(ScalarType.Char);
                        Tensor out = intTensor(rows, shape[0]);
                        if (!present) {
                            assertFalse(Int8RowsLinear.appliesIntMm(out, x, values, kernel), kernel + " missing: not taken");
                            continue;
                        }
                        assertTrue(Int8RowsLinear.appliesIntMm(out, x, values, kernel));
                        Int8RowsLinear.intMm(out, x, values, kernel);
                        Tensor expected = intTensor(rows, shape[0]);
                        org.bloomtune.tensor.shim.AtenShim.intMm(expected, x, values.t());
                        assertTrue(out.equal(expected), kernel + " " + shape[0] + "×" + shape[1] + ", " + rows + " rows");
                    }
                    if (!present) continue;
                    for (int sign : new int[]{-1, 1}) {
                        Tensor full = torch.full(new long[]{shape[0], shape[1]}, new Scalar(127)).to(ScalarType.Char);
                        Tensor xs = torch.full(new long[]{maxRows, shape[1]}, new Scalar(127 * sign)).to(ScalarType.Char);
                        Tensor out = intTensor(maxRows, shape[0]);
                        Int8RowsLinear.intMm(out, xs, full, kernel);
                        assertEquals(sign * 127L * 127 * shape[1], out.max().item_long(), kernel + " " + shape[1]);
                        assertEquals(sign * 127L * 127 * shape[1], out.min().item_long(), kernel + " " + shape[1]);
                    }
                }
            }
        }
    }

    private static Tensor intTensor(long rows, long cols) {
        return torch.empty(new long[]{rows, cols}, new org.bytedeco.pytorch.TensorOptions(ScalarType.Int), new org.bytedeco.pytorch.MemoryFormatOptional());
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor values = torch.randint(-127, 128, new long[]{16, 64}).to(ScalarType.Char);
            Tensor scales = torch.rand(16);
            assertFalse(Int8RowsLinear.applies(torch.randn(Int8RowsLinear.MAX_ROWS + 1, 64), values, scales), "too many rows");
            assertFalse(Int8RowsLinear.applies(torch.randn(1, 32), values, scales), "width mismatch");
            assertFalse(Int8RowsLinear.applies(torch.randn(1, 64).to(ScalarType.Double), values, scales), "float64 input");
            int bf16Rows = Int8RowsLinear.avx512Bf16Supported() ? Int8RowsLinear.MAX_AVX512_BF16_ROWS : Int8RowsLinear.MAX_BF16_ROWS;
            assertFalse(Int8RowsLinear.applies(torch.randn(bf16Rows + 1, 64).to(ScalarType.BFloat16), values, scales),
                    "bfloat16 rows beyond the pack kernel's crossover");
            assertFalse(Int8RowsLinear.applies(torch.randn(1, 64), values, torch.rand(15)), "scale count");
            assertFalse(Int8RowsLinear.applies(torch.randn(1, 64), values, scales.to(ScalarType.BFloat16)), "bfloat16 scales");
            assertFalse(Int8RowsLinear.applies(torch.randn(1, 16), values.t(), scales), "non-contiguous values");
            assertFalse(Int8RowsLinear.applies(torch.randn(1, 64).requires_grad_(true), values, scales), "recording autograd");
        }
    }
}
