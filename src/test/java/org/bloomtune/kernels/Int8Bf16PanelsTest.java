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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Int8Bf16PanelsTest {
    /**
     * The stored order is the header's (panel p, pair q, row j, half h holds W[32p + j][2q + h]), undone
     * by libtorch's own view and permute; and the product equals the float64 product of the same numbers
     * — x · valuesᵀ, times each row's scale, rounded to bfloat16, the bias added and rounded again — to
     * bfloat16's rounding at 1, 3, 8, 9 and 20 rows, k not a multiple of 32, with and without a bias,
     * one thread's bits equal to two's and a row's bits the same alone as in its batch — both ways of
     * multiplying ({@link Bf16Products}), each by floats and by digits ({@link Int8Products}; k / 2
     * odd, 66, takes the digits' last half word).
     */
    @ParameterizedTest
    @EnumSource(Bf16Products.class)
    void panelsHoldTheValuesInOrderAndGiveTheScaledProduct(Bf16Products way) {
        if (!Int8Bf16Panels.supported()) {
            assertFalse(Int8Bf16Panels.packs(torch.zeros(new long[]{32, 64}).to(ScalarType.Char)), "no AVX512_BF16: nothing packs");
            return;
        }
        Bf16Products measured = Bf16Gemm.products();
        Bf16Gemm.useProducts(way);
        try {
            for (Int8Products int8Way : Int8Products.values()) {
                Int8Bf16Panels.useProducts(int8Way);
                multipliesToBfloat16Rounding();
            }
        } finally {
            Bf16Gemm.useProducts(measured);
            Int8Bf16Panels.useDefaultProducts();
        }
    }

    private static void multipliesToBfloat16Rounding() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(9);
            for (long[] shape : new long[][]{{64, 64}, {32, 66}, {96, 1000}, {1024, 4096}}) {
                long n = shape[0], k = shape[1];
                Tensor values = torch.randint(-128, 128, new long[]{n, k}).to(ScalarType.Char);
                Tensor scales = torch.rand(n).mul(new Scalar(0.01)).add(new Scalar(1e-4));
                Tensor panels = Int8Bf16Panels.pack(values);
                assertTrue(torch.equal(panels.view(n / 32, k / 2, 32, 2).permute(0, 2, 1, 3).reshape(n, k), values),
                        n + " x " + k + ": the panels do not hold the values in the described order");
                Tensor bias = torch.randn(n).to(ScalarType.BFloat16);
                for (int rows : new int[]{1, 3, 8, 9, 20, 64}) {       // 64 rows of the widest: shares taken in claimed chunks
                    Tensor x = torch.randn(rows, 1, k).to(ScalarType.BFloat16);
                    Tensor product = torch.matmul(x.to(ScalarType.Double), values.to(ScalarType.Double).t()).mul(scales.to(ScalarType.Double));
                    for (Tensor b : new Tensor[]{null, bias}) {
                        Tensor y = Int8Bf16Panels.forward(x, panels, scales, b);
                        assertArrayEquals(new long[]{rows, 1, n}, y.sizes().vec().get());
                        Tensor exact = b == null ? product : product.add(b.to(ScalarType.Double));
                        // two bfloat16 roundings (the scaled sum, then with the bias): a unit in the last place of each
                        Tensor bound = product.abs().add(exact.abs()).mul(new Scalar(Math.pow(2, -8))).add(new Scalar(1e-3));
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        assertTrue(error.le(bound).all().item_bool(), rows + " rows of " + k + ": max error " + error.max().item_double());
                        Tensor alone = Int8Bf16Panels.forward(x.narrow(0, rows - 1, 1).clone(), panels, scales, b);
                        assertTrue(torch.equal(alone, y.narrow(0, rows - 1, 1)), rows + " rows: the last row alone gives other bits");
                        int threads = torch.get_num_threads();
                        torch.set_num_threads(1);
                        try {
                            assertTrue(torch.equal(Int8Bf16Panels.forward(x, panels, scales, b), y), rows + " rows: one thread gives other bits than two");
                        } finally {
                            torch.set_num_threads(threads);
                        }
                    }
                }
            }
        }
    }

    /**
     * Rows looked up by id from the panels: their int8 values are the row-major rows, and dequantized
     * they are the values times the scale in bfloat16 or float32 (libtorch's own product); an id
     * outside the rows is refused before any read.
     */
    @Test
    void rowsLookedUpFromThePanelsAreTheWeightsRows() {
        if (!Int8Bf16Panels.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor values = torch.randint(-128, 128, new long[]{64, 48}).to(ScalarType.Char);
            Tensor scales = torch.rand(64).mul(new Scalar(0.05)).add(new Scalar(1e-3));
            Tensor panels = Int8Bf16Panels.pack(values);
            Tensor ids = org.bloomtune.tensor.Tensors.fromLongs(new long[]{0, 31, 32, 63, 5, 40}, 3, 2);
            assertTrue(torch.equal(torch.embedding(values, ids), Int8Bf16Panels.values(panels, ids)), "int8 rows differ");
            for (ScalarType dtype : new ScalarType[]{ScalarType.BFloat16, ScalarType.Float}) {
                Tensor expected = torch.embedding(values, ids).to(dtype).mul(torch.embedding(scales.unsqueeze(1), ids).to(dtype));
                assertTrue(torch.equal(expected, Int8Bf16Panels.rows(panels, scales, ids, dtype)), dtype + ": dequantized rows differ from libtorch's product");
                org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                        () -> Int8Bf16Panels.rows(panels, scales, org.bloomtune.tensor.Tensors.fromLongs(new long[]{64}, 1, 1), dtype));
            }
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> Int8Bf16Panels.rows(panels, scales, ids, ScalarType.Half), "float16 rows");
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        if (!Int8Bf16Panels.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            assertFalse(Int8Bf16Panels.packs(torch.zeros(new long[]{48, 64}).to(ScalarType.Char)), "rows not a multiple of 32");
            assertFalse(Int8Bf16Panels.packs(torch.zeros(new long[]{32, 63}).to(ScalarType.Char)), "odd k");
            assertFalse(Int8Bf16Panels.packs(torch.zeros(new long[]{32, 64})), "float32 values");
            Tensor panels = Int8Bf16Panels.pack(torch.zeros(new long[]{32, 64}).to(ScalarType.Char));
            Tensor scales = torch.ones(32);
            assertFalse(Int8Bf16Panels.applies(torch.randn(1, 64), panels, scales, null), "float32 input");
            assertFalse(Int8Bf16Panels.applies(torch.randn(1, 62).to(ScalarType.BFloat16), panels, scales, null), "width mismatch");
            assertFalse(Int8Bf16Panels.applies(torch.randn(1, 64).to(ScalarType.BFloat16), panels, torch.ones(31), null), "scale count");
            assertFalse(Int8Bf16Panels.applies(torch.randn(1, 64).to(ScalarType.BFloat16), panels, scales, torch.ones(32)), "float32 bias");
        }
    }
}
