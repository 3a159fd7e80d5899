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
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Bf16PanelsTest {
    /**
     * The stored order is the one the header describes: panel p, pair q, column j, half h holds
     * W[32p + j][2q + h]. Undoing it with libtorch's own view and permute gives W back bit for bit.
     */
    @Test
    void panelsHoldEachWeightOnceInTheDescribedOrder() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            if (!Bf16Panels.supported()) {
                assertFalse(Bf16Panels.packs(torch.randn(32, 64).to(ScalarType.BFloat16)), "no AVX512_BF16: nothing packs");
                return;
            }
            torch.manual_seed(5);
            for (long[] shape : new long[][]{{32, 2}, {96, 1000}, {256, 4096}}) {
                long n = shape[0], k = shape[1];
                Tensor w = torch.randn(n, k).to(ScalarType.BFloat16);
                Tensor panels = Bf16Panels.pack(w);
                assertArrayEquals(new long[]{n, k}, panels.sizes().vec().get());
                Tensor back = panels.view(n / 32, k / 2, 32, 2).permute(0, 2, 1, 3).reshape(n, k);
                assertTrue(torch.equal(back, w), n + " x " + k + ": the panels do not hold W in the described order");
            }
        }
    }

    /**
     * Against the float64 product of the same bfloat16 numbers (the kernel sums in float32 and rounds
     * once): rows below, at and past a pass of eight (1, 3, 8, 9, 20 — a prefill's many rows too), k
     * not a multiple of 32, with and without a bias, and the result the same whatever the split over
     * threads.
     */
    @Test
    void anyRowsEqualTheExactProductToBfloat16Rounding() {
        if (!Bf16Panels.supported()) return;    // nothing packs here: panelsHoldEachWeightOnce checks the refusal
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(7);
            for (long[] shape : new long[][]{{64, 64}, {96, 1000}, {1024, 4096}}) {
                Tensor w = torch.randn(shape[0], shape[1]).to(ScalarType.BFloat16);
                Tensor panels = Bf16Panels.pack(w);
                Tensor bias = torch.randn(shape[0]).to(ScalarType.BFloat16);
                for (int rows : new int[]{1, 3, 8, 9, 20, 64}) {       // 64 rows of the widest: shares taken in claimed chunks
                    Tensor x = torch.randn(rows, 1, shape[1]).to(ScalarType.BFloat16);
                    for (Tensor b : new Tensor[]{bias, null}) {
                        assertTrue(Bf16Panels.applies(x, panels, b));
                        Tensor y = Bf16Panels.forward(x, panels, b);
                        assertArrayEquals(new long[]{rows, 1, shape[0]}, y.sizes().vec().get());
                        assertEquals(ScalarType.BFloat16.value, y.scalar_type().value);
                        Tensor exact = b == null ? torch.linear(x.to(ScalarType.Double), w.to(ScalarType.Double))
                                : torch.linear(x.to(ScalarType.Double), w.to(ScalarType.Double), new TensorOptional(b.to(ScalarType.Double)));
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        Tensor bound = exact.abs().mul(new Scalar(Math.pow(2, -8))).add(new Scalar(1e-3));
                        assertTrue(error.le(bound).all().item_bool(), rows + " rows of " + shape[1] + ": max error " + error.max().item_double());
                        int threads = torch.get_num_threads();
                        torch.set_num_threads(1);
                        try {
                            assertTrue(torch.equal(Bf16Panels.forward(x, panels, b), y), rows + " rows: one thread gives other bits than two");
                        } finally {
                            torch.set_num_threads(threads);
                        }
                    }
                }
            }
        }
    }

    /** Rows looked up by id from the panels are the row-major weight's rows, in the ids' shape; an id outside the rows is refused before any read. */
    @Test
    void rowsLookedUpFromThePanelsAreTheWeightsRows() {
        if (!Bf16Panels.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor weight = torch.randn(96, 40).to(ScalarType.BFloat16);
            Tensor panels = Bf16Panels.pack(weight);
            Tensor ids = org.bloomtune.tensor.Tensors.fromLongs(new long[]{0, 31, 32, 95, 64, 7}, 2, 3);
            assertTrue(torch.equal(torch.embedding(weight, ids), Bf16Panels.rows(panels, ids)), "rows differ from the weight's");
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> Bf16Panels.rows(panels, org.bloomtune.tensor.Tensors.fromLongs(new long[]{3, 96}, 1, 2)));
            assertTrue(e.getMessage().contains("96"), e.getMessage());
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> Bf16Panels.rows(panels, org.bloomtune.tensor.Tensors.fromLongs(new long[]{-1}, 1, 1)));
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        if (!Bf16Panels.supported()) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor w = torch.randn(32, 64).to(ScalarType.BFloat16);
            assertFalse(Bf16Panels.packs(torch.randn(48, 64).to(ScalarType.BFloat16)), "rows not a multiple of 32");
            assertFalse(Bf16Panels.packs(torch.randn(32, 63).to(ScalarType.BFloat16)), "odd k");
            assertFalse(Bf16Panels.packs(torch.randn(32, 64)), "float32");
            assertFalse(Bf16Panels.packs(torch.randn(64, 32).to(ScalarType.BFloat16).t()), "non-contiguous");
            assertThrows(IllegalArgumentException.class, () -> Bf16Panels.pack(torch.randn(48, 64).to(ScalarType.BFloat16)));
            Tensor panels = Bf16Panels.pack(w);
            assertFalse(Bf16Panels.applies(torch.randn(1, 64), panels, null), "float32 input");
            assertFalse(Bf16Panels.applies(torch.randn(1, 32).to(ScalarType.BFloat16), panels, null), "width mismatch");
            assertFalse(Bf16Panels.applies(torch.randn(1, 64).to(ScalarType.BFloat16), panels, torch.randn(31).to(ScalarType.BFloat16)), "bias length");
        }
    }
}
