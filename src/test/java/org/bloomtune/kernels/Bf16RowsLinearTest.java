package org.bloomtune.kernels;

import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Bf16RowsLinearTest {
    /**
     * Against the float64 product of the same bfloat16 numbers: the kernel sums in float32 and rounds
     * once, so its error is bfloat16's last-place rounding of the result — the same as libtorch's
     * linear, which it must match to that rounding. Odd sizes exercise the tails (k not a multiple of
     * 32: masked loads; n not of 16: single weight rows; n below 16), row counts both paths (one row
     * read front to back, 3–8 rows packed side by side, past eight groups of eight against each block
     * of a thread's weight rows).
     * On a CPU without AVX512_BF16 the kernel must refuse every call.
     */
    @Test
    void fewRowsEqualTheExactProductToBfloat16Rounding() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(3);
            for (long[] shape : new long[][]{{1027, 1000}, {8, 64}, {250, 4096}}) {
                Tensor w = torch.randn(shape[0], shape[1]).to(ScalarType.BFloat16);
                Tensor bias = torch.randn(shape[0]).to(ScalarType.BFloat16);
                for (int rows : new int[]{1, 3, 4, 7, Bf16RowsLinear.CALL_ROWS, 9, 13, Bf16RowsLinear.MAX_ROWS}) {
                    Tensor x = torch.randn(rows, 1, shape[1]).to(ScalarType.BFloat16);
                    if (!Bf16RowsLinear.supported()) {
                        assertFalse(Bf16RowsLinear.applies(x, w, bias), "no AVX512_BF16: libtorch's linear");
                        continue;
                    }
                    for (Tensor b : new Tensor[]{bias, null}) {
                        assertTrue(Bf16RowsLinear.applies(x, w, b));
                        Tensor y = Bf16RowsLinear.forward(x, w, b);
                        assertArrayEquals(new long[]{rows, 1, shape[0]}, y.sizes().vec().get());
                        assertEquals(ScalarType.BFloat16.value, y.scalar_type().value);
                        Tensor exact = b == null ? torch.linear(x.to(ScalarType.Double), w.to(ScalarType.Double))
                                : torch.linear(x.to(ScalarType.Double), w.to(ScalarType.Double), new TensorOptional(b.to(ScalarType.Double)));
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        // bfloat16 keeps 8 significant bits: half a unit in the last place is 2^-8 of the value
                        Tensor bound = exact.abs().mul(new org.bytedeco.pytorch.Scalar(Math.pow(2, -8))).add(new org.bytedeco.pytorch.Scalar(1e-3));
                        assertTrue(error.le(bound).all().item_bool(), rows + " rows: max error " + error.max().item_double());
                    }
                }
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor w = torch.randn(16, 64).to(ScalarType.BFloat16);
            assertFalse(Bf16RowsLinear.applies(torch.randn(Bf16RowsLinear.MAX_ROWS + 1, 64).to(ScalarType.BFloat16), w, null), "too many rows");
            assertFalse(Bf16RowsLinear.applies(torch.randn(1, 64), w, null), "float32 input");
            assertFalse(Bf16RowsLinear.applies(torch.randn(1, 32).to(ScalarType.BFloat16), w, null), "width mismatch");
            assertFalse(Bf16RowsLinear.applies(torch.randn(1, 64).to(ScalarType.BFloat16), w.t(), null), "non-contiguous weight");
            assertFalse(Bf16RowsLinear.applies(torch.randn(1, 64).to(ScalarType.BFloat16), w, torch.randn(15).to(ScalarType.BFloat16)), "bias length");
        }
    }
}
