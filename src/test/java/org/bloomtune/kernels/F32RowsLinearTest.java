package org.bloomtune.kernels;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class F32RowsLinearTest {
    /**
     * Against the float64 product of the same float32 numbers: a float32 sum of k products errs by at
     * most about k · 2^-24 of the sum of their magnitudes. Odd sizes exercise the tails (k not a
     * multiple of 16, out not of 4 or 16), one row (read front to back), a full block of four rows
     * of x and partial ones, from five rows the packed path, and past eight rows groups of eight
     * (and the rest) against each block of a thread's weight rows. On a CPU without AVX-512F the
     * kernel must refuse every call.
     */
    @Test
    void decodeBatchesEqualTheExactProductToFloatRounding() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(8);
            for (long[] shape : new long[][]{{1027, 1001}, {8, 64}, {250, 4096}, {3, 5}}) {
                Tensor w = torch.randn(shape[0], shape[1]);
                Tensor bias = torch.randn(shape[0]);
                for (int rows = F32RowsLinear.MIN_ROWS; rows <= F32RowsLinear.MAX_ROWS; rows++) {
                    Tensor x = torch.randn(rows, 1, shape[1]);
                    if (!F32RowsLinear.supported()) {
                        assertFalse(F32RowsLinear.applies(x, w, bias), "no AVX-512F: libtorch's linear");
                        continue;
                    }
                    for (Tensor b : new Tensor[]{bias, null}) {
                        assertTrue(F32RowsLinear.applies(x, w, b));
                        Tensor y = F32RowsLinear.forward(x, w, b);
                        assertArrayEquals(new long[]{rows, 1, shape[0]}, y.sizes().vec().get());
                        Tensor xd = x.to(ScalarType.Double);
                        Tensor wd = w.to(ScalarType.Double);
                        Tensor exact = b == null ? torch.linear(xd, wd) : torch.linear(xd, wd, new TensorOptional(b.to(ScalarType.Double)));
                        Tensor bound = torch.linear(xd.abs(), wd.abs()).mul(new Scalar((shape[1] + 1) * Math.pow(2, -24))).add(new Scalar(1e-30));
                        if (b != null) bound = bound.add(b.to(ScalarType.Double).abs().mul(new Scalar(Math.pow(2, -24))));
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        assertTrue(error.le(bound).all().item_bool(), shape[0] + "×" + shape[1] + ", " + rows + " rows: max error "
                                + error.max().item_double());
                    }
                }
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor w = torch.randn(16, 64);
            assertFalse(F32RowsLinear.applies(torch.randn(0, 64), w, null), "no rows");
            assertFalse(F32RowsLinear.applies(torch.randn(F32RowsLinear.MAX_ROWS + 1, 64), w, null), "too many rows");
            assertFalse(F32RowsLinear.applies(torch.randn(2, 64).to(ScalarType.BFloat16), w, null), "bfloat16 input");
            assertFalse(F32RowsLinear.applies(torch.randn(2, 32), w, null), "width mismatch");
            assertFalse(F32RowsLinear.applies(torch.randn(2, 64), w.t().contiguous().t(), null), "non-contiguous weight");
            assertFalse(F32RowsLinear.applies(torch.randn(2, 64), w, torch.randn(15)), "bias length");
            assertFalse(F32RowsLinear.applies(torch.randn(2, 64).requires_grad_(true), w, null), "recording autograd");
        }
    }
}
