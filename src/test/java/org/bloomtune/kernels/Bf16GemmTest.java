package org.bloomtune.kernels;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Against the float64 product of the same bfloat16 numbers: the kernel sums in float32 and rounds
 * once (bfloat16 C) or not at all (float32 C), so a bfloat16 result is within half a unit in the
 * last place of bfloat16 (2^-8 of the value) plus float32's accumulation error. Sizes exercise the
 * edges: rows not a multiple of the 8-row tile, columns not of the 32-column panel or of the
 * 64-column block two threads split, k not of 32. An int8 weight's products must equal, bit for bit,
 * the same kernel's products of the weight dequantized by {@link Int8Dequantize} (the same bfloat16
 * numbers in the same order). Each holds for both ways of multiplying ({@link Bf16Products}), whichever
 * this CPU runs faster. On a CPU without AVX512_BF16 the kernel must refuse every call.
 */
class Bf16GemmTest {
    // k of 4098 (x Wᵀ) and 2100 (dy W) spans chunks of the kernel's 2048, the last a few pairs long
    private static final long[][] SHAPES = {{64, 70, 38}, {203, 1000, 1024}, {1064, 258, 96}, {77, 64, 4098}, {72, 2100, 96}};

    @ParameterizedTest
    @EnumSource(Bf16Products.class)
    void productsEqualTheExactOnesToBfloat16Rounding(Bf16Products way) {
        Bf16Products measured = Bf16Gemm.products();
        Bf16Gemm.useProducts(way);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(5);
            for (long[] s : SHAPES) {
                long m = s[0], n = s[1], k = s[2];
                Tensor x = torch.randn(m, k).to(ScalarType.BFloat16);
                Tensor w = torch.randn(n, k).to(ScalarType.BFloat16);           // a linear layer's [out, in]
                Tensor bias = torch.randn(n).to(ScalarType.BFloat16);
                Tensor dy = torch.randn(m, n).to(ScalarType.BFloat16);
                if (!Bf16Gemm.supported()) {
                    assertFalse(Bf16Gemm.applies(x, w, true), "no AVX512_BF16: libtorch's ops");
                    continue;
                }
                for (Tensor b : new Tensor[]{bias, null}) {
                    Tensor y = Bf16Gemm.linear(x.view(1, m, k), w, b);
                    assertArrayEquals(new long[]{1, m, n}, y.sizes().vec().get());
                    Tensor exact = b == null ? torch.linear(x.to(ScalarType.Double), w.to(ScalarType.Double))
                            : torch.linear(x.to(ScalarType.Double), w.to(ScalarType.Double), new TensorOptional(b.to(ScalarType.Double)));
                    assertRounded(y.view(m, n), exact, k, "x Wᵀ + b " + m + "×" + n + "×" + k);
                }
                Tensor dx = Bf16Gemm.inputGradient(dy, w);
                assertRounded(dx, dy.to(ScalarType.Double).mm(w.to(ScalarType.Double)), n, "dy W " + m + "×" + n + "×" + k);

                Tensor logits = torch.zeros(m, n).to(ScalarType.BFloat16);
                Bf16Gemm.linearInto(logits, x, w);
                assertRounded(logits, x.to(ScalarType.Double).mm(w.to(ScalarType.Double).t()), k, "into a buffer");
            }
        } finally {
            Bf16Gemm.useProducts(measured);
        }
    }

    @ParameterizedTest
    @EnumSource(Bf16Products.class)
    void float32OutputAccumulatesTheUnroundedProduct(Bf16Products way) {
        Bf16Products measured = Bf16Gemm.products();
        Bf16Gemm.useProducts(way);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(6);
            for (long[] s : SHAPES) {
                long m = s[0], n = s[1], k = s[2];
                Tensor a = torch.randn(m, n).to(ScalarType.BFloat16);
                Tensor w = torch.randn(n, k).to(ScalarType.BFloat16);
                if (!Bf16Gemm.supported()) {
                    assertFalse(Bf16Gemm.applies(a, w, false));
                    continue;
                }
                Tensor acc = torch.randn(m, k);
                Tensor exact = acc.to(ScalarType.Double).add(a.to(ScalarType.Double).mm(w.to(ScalarType.Double)));
                Bf16Gemm.addProductInto(acc, a, w);
                // float32 sums of n products of unit-variance numbers: relative error well under 1e-5 of √n
                double tolerance = 1e-5 * Math.sqrt(n) * 4;
                double error = acc.to(ScalarType.Double).sub(exact).abs().max().item_double();
                assertTrue(error < tolerance, m + "×" + n + "×" + k + ": max error " + error);
            }
        } finally {
            Bf16Gemm.useProducts(measured);
        }
    }

    @ParameterizedTest
    @EnumSource(Bf16Products.class)
    void int8WeightsGiveTheProductsOfTheirDequantizedCopy(Bf16Products way) {
        Bf16Products measured = Bf16Gemm.products();
        Bf16Gemm.useProducts(way);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(7);
            for (long[] s : SHAPES) {
                long m = s[0], n = s[1], k = s[2];
                Tensor x = torch.randn(m, k).to(ScalarType.BFloat16);
                Tensor values = torch.randint(-127, 128, new long[]{n, k}).to(ScalarType.Char);
                // absmax / 127 scales of weights around 0.02–2: many do not round to bfloat16 exactly
                Tensor scales = torch.rand(n).mul(new Scalar(0.02)).add(new Scalar(1e-4));
                Tensor bias = torch.randn(n).to(ScalarType.BFloat16);
                Tensor dy = torch.randn(m, n).to(ScalarType.BFloat16);
                if (!Bf16Gemm.supported()) {
                    assertFalse(Bf16Gemm.appliesInt8(x, values, scales, true), "no AVX512_BF16: libtorch's ops");
                    continue;
                }
                Tensor w = Int8Dequantize.dequantize(values, scales, ScalarType.BFloat16);
                String shape = m + "×" + n + "×" + k;
                for (Tensor b : new Tensor[]{bias, null}) {
                    Tensor y = Bf16Gemm.int8Linear(x.view(1, m, k), values, scales, b);
                    assertArrayEquals(new long[]{1, m, n}, y.sizes().vec().get());
                    assertTrue(torch.equal(y.view(m, n), Bf16Gemm.linear(x, w, b)), "x Wᵀ + b " + shape);
                }
                assertTrue(torch.equal(Bf16Gemm.int8InputGradient(dy, values, scales), Bf16Gemm.inputGradient(dy, w)), "dy W " + shape);
            }
        } finally {
            Bf16Gemm.useProducts(measured);
        }
    }

    @Test
    void theWayIsMeasuredOnceAndCanBeSetByName() {
        assertTrue(Bf16Gemm.products() == Bf16Gemm.products(), "one measurement per process");
        assertTrue(Bf16Products.parse("Widened") == Bf16Products.WIDENED && Bf16Products.parse(" pairs ") == Bf16Products.PAIRS);
        assertTrue(Bf16Products.parse(null) == null && Bf16Products.parse("measured") == null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Bf16Products.parse("amx"));
        assertTrue(e.getMessage().contains(Bf16Products.PROPERTY), e.getMessage());
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor w = torch.randn(96, 64).to(ScalarType.BFloat16);
            Tensor x = torch.randn(Bf16Gemm.MIN_ROWS, 64).to(ScalarType.BFloat16);
            assertTrue(Bf16Gemm.applies(x, w, true) || !Bf16Gemm.supported());
            assertFalse(Bf16Gemm.applies(torch.randn(Bf16Gemm.MIN_ROWS - 1, 64).to(ScalarType.BFloat16), w, true), "a decode step's few rows");
            assertFalse(Bf16Gemm.applies(torch.randn(Bf16Gemm.MIN_ROWS, 64), w, true), "float32 input");
            assertFalse(Bf16Gemm.applies(torch.randn(Bf16Gemm.MIN_ROWS, 63).to(ScalarType.BFloat16), torch.randn(96, 63).to(ScalarType.BFloat16), true), "odd k");
            assertFalse(Bf16Gemm.applies(x, w.t(), true), "non-contiguous weight");
            assertFalse(Bf16Gemm.applies(x, torch.randn(96, 32).to(ScalarType.BFloat16), true), "width mismatch");
            assertFalse(Bf16Gemm.applies(x.clone().requires_grad_(true), w, true), "recorded by autograd");
            assertFalse(Bf16Gemm.appliesToLinear(x, w, torch.randn(95).to(ScalarType.BFloat16)), "bias length");
            assertThrows(IllegalArgumentException.class, () -> Bf16Gemm.linear(x, w, torch.randn(95).to(ScalarType.BFloat16)));
            Tensor values = torch.zeros(96, 64).to(ScalarType.Char);
            assertTrue(Bf16Gemm.appliesInt8(x, values, torch.ones(96), true) || !Bf16Gemm.supported());
            assertFalse(Bf16Gemm.appliesInt8(x, values, torch.ones(95), true), "a scale per row");
            assertFalse(Bf16Gemm.appliesInt8(x, values, torch.ones(96).to(ScalarType.BFloat16), true), "float32 scales");
            assertFalse(Bf16Gemm.appliesInt8(x, values.to(ScalarType.Byte), torch.ones(96), true), "uint8 values");
            assertFalse(Bf16Gemm.appliesInt8(x, values, torch.ones(96), false), "dy W sums over the 96 rows");
            assertThrows(IllegalArgumentException.class, () -> Bf16Gemm.int8InputGradient(x, values, torch.ones(96)));
            assertThrows(IllegalArgumentException.class, () -> Bf16Gemm.linearInto(torch.zeros(Bf16Gemm.MIN_ROWS, 95).to(ScalarType.BFloat16), x, w));
            assertThrows(IllegalArgumentException.class, () -> Bf16Gemm.addProductInto(torch.zeros(Bf16Gemm.MIN_ROWS, 64).to(ScalarType.BFloat16),
                    torch.randn(Bf16Gemm.MIN_ROWS, 96).to(ScalarType.BFloat16), w));
        }
    }

    /** Within half a bfloat16 unit in the last place of the exact value, plus float32 rounding over k terms. */
    private static void assertRounded(Tensor got, Tensor exact, long k, String what) {
        Tensor error = got.to(ScalarType.Double).sub(exact).abs();
        Tensor bound = exact.abs().mul(new Scalar(Math.pow(2, -8))).add(new Scalar(1e-6 * Math.sqrt(k) * 8));
        assertTrue(error.le(bound).all().item_bool(), what + ": max error " + error.max().item_double());
    }
}
