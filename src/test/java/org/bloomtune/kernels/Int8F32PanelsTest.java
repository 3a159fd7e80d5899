package org.bloomtune.kernels;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Int8F32PanelsTest {
    /**
     * Float32 rows times {@link Int8Bf16Panels}' panels equal the float64 product of the same numbers
     * — x · valuesᵀ, times each row's scale, plus the bias — within float32's summation bound (k + 2
     * roundings of each term's magnitude) at 1, 3, 8, 9, 20 and 64 rows, k not a multiple of 32, with
     * and without a bias; a row's bits are the same alone as in its batch, one thread's the same as
     * two's; and the row-major kernel ({@link Int8RowsLinear}) agrees to the same bound. By
     * {@link Int8Products#DIGITS} the bound is x's representation instead — half a step, at most
     * max|x| · 2⁻²², in each element, times Σ|w| and the scale — and one rounding of the result;
     * k / 2 odd (66) takes the digits' last half word.
     */
    @ParameterizedTest
    @EnumSource(Int8Products.class)
    void theProductIsTheScaledFloat64ProductAndARowsBitsDoNotDependOnItsBatch(Int8Products way) {
        if (!Int8F32Panels.supported()) return;
        Int8Bf16Panels.useProducts(way);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            boolean digits = Int8F32Panels.products() == Int8Products.DIGITS;
            torch.manual_seed(11);
            for (long[] shape : new long[][]{{64, 64}, {32, 66}, {96, 1000}, {1024, 4096}}) {
                long n = shape[0], k = shape[1];
                Weight weight = Weight.random(n, k);
                Tensor values = weight.values(), scales = weight.scales(), panels = weight.panels();
                Tensor bias = torch.randn(n);
                for (int rows : new int[]{1, 3, 8, 9, 20, 64}) {
                    Tensor x = torch.randn(rows, 1, k);
                    Tensor x64 = x.to(ScalarType.Double);
                    Tensor v64 = values.to(ScalarType.Double).t();
                    Tensor s64 = scales.to(ScalarType.Double);
                    Tensor product = torch.matmul(x64, v64).mul(s64);
                    Tensor magnitude = torch.matmul(x64.abs(), v64.abs()).mul(s64);
                    for (Tensor b : new Tensor[]{null, bias}) {
                        Tensor y = Int8F32Panels.forward(x, panels, scales, b);
                        assertArrayEquals(new long[]{rows, 1, n}, y.sizes().vec().get());
                        Tensor exact = b == null ? product : product.add(b.to(ScalarType.Double));
                        Tensor summed = magnitude.mul(new Scalar((k + 2) * Math.pow(2, -24))).add(exact.abs().mul(new Scalar(Math.pow(2, -23))));
                        Tensor bound = digits ? representation(x64, v64, s64).add(exact.abs().mul(new Scalar(Math.pow(2, -23)))) : summed;
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        assertTrue(error.le(bound).all().item_bool(), way + ", " + rows + " rows of " + k + ": max error " + error.max().item_double());
                        if (Int8RowsLinear.supported() && rows <= Int8RowsLinear.MAX_ROWS) {
                            Tensor rowMajor = Int8RowsLinear.forward(x.view(rows, k), values, scales, b).to(ScalarType.Double);
                            Tensor apart = rowMajor.sub(y.view(rows, n).to(ScalarType.Double)).abs();
                            assertTrue(apart.le(bound.add(summed).view(rows, n)).all().item_bool(), rows + " rows: the row-major kernel disagrees");
                        }
                        Tensor alone = Int8F32Panels.forward(x.narrow(0, rows - 1, 1).clone(), panels, scales, b);
                        Tensor inBatch = y.narrow(0, rows - 1, 1);
                        assertTrue(torch.equal(alone, inBatch), () -> rows + " rows of " + k + ": the last row alone gives other bits, "
                                + alone.sub(inBatch).abs().max().item_double() + " apart");
                        int threads = torch.get_num_threads();
                        torch.set_num_threads(1);
                        try {
                            assertTrue(torch.equal(Int8F32Panels.forward(x, panels, scales, b), y), rows + " rows: one thread gives other bits than two");
                        } finally {
                            torch.set_num_threads(threads);
                        }
                    }
                }
            }
        } finally {
            Int8Bf16Panels.useDefaultProducts();
        }
    }

    /** Half a digit step of each row (at most max|x| · 2⁻²²) times Σ|w| and the scale: the digits' bound on x's representation. */
    static Tensor representation(Tensor x64, Tensor v64, Tensor s64) {
        Tensor halfStep = x64.abs().amax(new long[]{-1}, true).mul(new Scalar(Math.pow(2, -22)));
        return halfStep.mul(v64.abs().sum(new long[]{0}, false, new org.bytedeco.pytorch.ScalarTypeOptional())).mul(s64);
    }

    /**
     * By digits, a row of x with values 10⁶ apart in size: the product within the representation's
     * bound; a row holding a NaN or an infinity gives NaN in every output and leaves the other rows'
     * bits alone; a row of zeros gives the bias exactly.
     */
    @Test
    void digitsHoldWideRowsAndMarkNonFiniteOnes() {
        byDigits(() -> {
            torch.manual_seed(12);
            long n = 64, k = 512;
            Weight weight = Weight.random(n, k);
            Tensor values = weight.values(), scales = weight.scales(), panels = weight.panels();
            Tensor bias = torch.randn(n);
            Tensor x = torch.randn(5, k).mul(new Scalar(1e-3));
            x.select(0, 0).narrow(0, 7, 1).fill_(new Scalar(1000.0));          // one outlier 10⁶ times the rest
            x.select(0, 2).narrow(0, 100, 1).fill_(new Scalar(Double.NaN));
            x.select(0, 3).narrow(0, 511, 1).fill_(new Scalar(Double.NEGATIVE_INFINITY));
            x.select(0, 4).zero_();
            Tensor y = Int8F32Panels.forward(x, panels, scales, bias);
            Tensor x64 = x.to(ScalarType.Double), v64 = values.to(ScalarType.Double).t(), s64 = scales.to(ScalarType.Double);
            Tensor exact = torch.matmul(x64, v64).mul(s64).add(bias.to(ScalarType.Double));
            for (int r : new int[]{0, 1}) {
                Tensor bound = representation(x64.narrow(0, r, 1), v64, s64).add(exact.narrow(0, r, 1).abs().mul(new Scalar(Math.pow(2, -23))));
                Tensor error = y.narrow(0, r, 1).to(ScalarType.Double).sub(exact.narrow(0, r, 1)).abs();
                assertTrue(error.le(bound).all().item_bool(), "row " + r + ": max error " + error.max().item_double());
            }
            assertTrue(y.narrow(0, 2, 2).isnan().all().item_bool(), "a row with a NaN or an infinity gives NaN everywhere");
            assertTrue(torch.equal(y.select(0, 4), bias), "a row of zeros gives the bias");
            Tensor finite = torch.cat(new org.bytedeco.pytorch.TensorVector(x.narrow(0, 0, 2), x.narrow(0, 4, 1)));
            Tensor apart = Int8F32Panels.forward(finite, panels, scales, bias);
            assertTrue(torch.equal(apart.narrow(0, 0, 2), y.narrow(0, 0, 2)) && torch.equal(apart.select(0, 2), y.select(0, 4)),
                    "the non-finite rows changed the others' bits");
        });
    }

    /**
     * The way each dtype takes by default: float32 rows by digits wherever the CPU has VNNI, bfloat16
     * rows only where its bfloat16 products are widened; a way set for the process holds for both.
     */
    @Test
    void float32RowsTakeDigitsWhereverTheCpuHasVnniBfloat16OnlyWhereItWidens() {
        if (!Int8F32Panels.supported() || System.getProperty(Int8Products.PROPERTY) != null) return;
        try {
            Int8Bf16Panels.useProducts(Int8Products.FLOATS);
            assertEquals(Int8Products.FLOATS, Int8F32Panels.products());
            assertEquals(Int8Products.FLOATS, Int8Bf16Panels.products());
            Int8Bf16Panels.useDefaultProducts();
            boolean vnni = Int8RowsLinear.vnniSupported();
            assertEquals(vnni ? Int8Products.DIGITS : Int8Products.FLOATS, Int8F32Panels.products());
            assertEquals(vnni && Bf16Gemm.products() == Bf16Products.WIDENED ? Int8Products.DIGITS : Int8Products.FLOATS,
                    Int8Bf16Panels.products());
        } finally {
            Int8Bf16Panels.useDefaultProducts();
        }
    }

    /**
     * Past the digits' exact int32 sums (k > 65536) a product chosen to multiply by digits multiplies
     * by floats instead: the same bits as the floats' way, in float32 and in bfloat16 — the Java side
     * finds no room for the digits, and each range's kernel call falls back from its digits.
     */
    @Test
    void pastTheDigitsSumsTheProductIsTheFloatsOne() {
        byDigits(() -> {
            torch.manual_seed(13);
            long n = 32, k = 65538;
            Weight weight = Weight.random(n, k);
            Tensor scales = weight.scales(), panels = weight.panels();
            Tensor bias = torch.randn(n);
            for (int rows : new int[]{1, 5}) {
                Tensor x = torch.randn(rows, k);
                Tensor byDigitsWay = Int8F32Panels.forward(x, panels, scales, bias);
                Tensor bf16ByDigitsWay = Int8Bf16Panels.supported() ? Int8Bf16Panels.forward(x.to(ScalarType.BFloat16), panels, scales,
                        bias.to(ScalarType.BFloat16)) : null;
                Int8Bf16Panels.useProducts(Int8Products.FLOATS);
                assertTrue(torch.equal(byDigitsWay, Int8F32Panels.forward(x, panels, scales, bias)), rows + " rows: float32 bits differ");
                if (bf16ByDigitsWay != null) {
                    assertTrue(torch.equal(bf16ByDigitsWay, Int8Bf16Panels.forward(x.to(ScalarType.BFloat16), panels, scales,
                            bias.to(ScalarType.BFloat16))), rows + " rows: bfloat16 bits differ");
                }
                Int8Bf16Panels.useProducts(Int8Products.DIGITS);
            }
        });
    }

    /** Runs {@code body} with the panels multiplying by digits, the process's way restored after; nothing where the CPU has no VNNI. */
    private static void byDigits(Runnable body) {
        if (!Int8F32Panels.supported()) return;
        Int8Bf16Panels.useProducts(Int8Products.DIGITS);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            if (Int8F32Panels.products() == Int8Products.DIGITS) body.run();
        } finally {
            Int8Bf16Panels.useDefaultProducts();
        }
    }

    /** Random int8 values [n, k], row scales in [1e-4, 0.0101) and the values packed into panels. */
    private record Weight(Tensor values, Tensor scales, Tensor panels) {
        static Weight random(long n, long k) {
            Tensor values = torch.randint(-128, 128, new long[]{n, k}).to(ScalarType.Char);
            return new Weight(values, torch.rand(n).mul(new Scalar(0.01)).add(new Scalar(1e-4)), Int8Bf16Panels.pack(values));
        }
    }

    @Test
    void theWayIsReadFromItsPropertyOrAnErrorNamesIt() {
        assertTrue(Int8Products.parse("Digits") == Int8Products.DIGITS && Int8Products.parse(" floats ") == Int8Products.FLOATS);
        assertTrue(Int8Products.parse(null) == null && Int8Products.parse("measured") == null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Int8Products.parse("vnni"));
        assertTrue(e.getMessage().contains(Int8Products.PROPERTY) && e.getMessage().contains("'vnni'")
                && e.getMessage().contains("floats, digits or measured"), e.getMessage());
    }

    @Test
    void refusesWhatItCannotTake() {
        if (!Int8F32Panels.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor panels = Int8Bf16Panels.pack(torch.zeros(new long[]{32, 64}).to(ScalarType.Char));
            Tensor scales = torch.ones(32);
            assertTrue(Int8F32Panels.applies(torch.randn(2, 64), panels, scales, torch.ones(32)), "float32 rows with a float32 bias");
            assertFalse(Int8F32Panels.applies(torch.randn(1, 64).to(ScalarType.BFloat16), panels, scales, null), "bfloat16 input");
            assertFalse(Int8F32Panels.applies(torch.randn(1, 62), panels, scales, null), "width mismatch");
            assertFalse(Int8F32Panels.applies(torch.randn(1, 64), panels, torch.ones(31), null), "scale count");
            assertFalse(Int8F32Panels.applies(torch.randn(1, 64), panels, scales, torch.ones(32).to(ScalarType.BFloat16)), "bfloat16 bias");
            assertFalse(Int8F32Panels.applies(torch.randn(1, 64), torch.zeros(new long[]{32, 64}), scales, null), "float32 weight");
            assertFalse(Int8F32Panels.applies(torch.randn(1, 64).requires_grad_(true), panels, scales, null), "under autograd");
            assertThrows(IllegalArgumentException.class, () -> Int8F32Panels.forward(torch.randn(1, 62), panels, scales, null));
        }
    }
}
