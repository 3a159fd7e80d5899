package org.bloomtune.kernels;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Int8F32PanelsTest {
    /**
     * Float32 rows times {@link Int8Bf16Panels}' panels equal the float64 product of the same numbers
     * — x · valuesᵀ, times each row's scale, plus the bias — within float32's summation bound (k + 2
     * roundings of each term's magnitude) at 1, 3, 8, 9, 20 and 64 rows, k not a multiple of 32, with
     * and without a bias; a row's bits are the same alone as in its batch, one thread's the same as
     * two's; and the row-major kernel ({@link Int8RowsLinear}) agrees to the same bound.
     */
    @Test
    void theProductIsTheScaledFloat64ProductAndARowsBitsDoNotDependOnItsBatch() {
        if (!Int8F32Panels.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(11);
            for (long[] shape : new long[][]{{64, 64}, {96, 1000}, {1024, 4096}}) {
                long n = shape[0], k = shape[1];
                Tensor values = torch.randint(-128, 128, new long[]{n, k}).to(ScalarType.Char);
                Tensor scales = torch.rand(n).mul(new Scalar(0.01)).add(new Scalar(1e-4));
                Tensor panels = Int8Bf16Panels.pack(values);
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
                        Tensor bound = magnitude.mul(new Scalar((k + 2) * Math.pow(2, -24))).add(exact.abs().mul(new Scalar(Math.pow(2, -23))));
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        assertTrue(error.le(bound).all().item_bool(), rows + " rows of " + k + ": max error " + error.max().item_double());
                        if (Int8RowsLinear.supported() && rows <= Int8RowsLinear.MAX_ROWS) {
                            Tensor rowMajor = Int8RowsLinear.forward(x.view(rows, k), values, scales, b).to(ScalarType.Double);
                            Tensor apart = rowMajor.sub(y.view(rows, n).to(ScalarType.Double)).abs();
                            assertTrue(apart.le(bound.view(rows, n).mul(new Scalar(2))).all().item_bool(), rows + " rows: the row-major kernel disagrees");
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
        }
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
