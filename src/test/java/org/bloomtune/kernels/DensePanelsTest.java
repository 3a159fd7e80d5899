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

/** The panel layouts of both dtypes against the weight they hold and the float64 product. */
class DensePanelsTest {
    private static final ScalarType[] DTYPES = {ScalarType.BFloat16, ScalarType.Float};

    /**
     * The stored order is the one the headers describe: bfloat16 panel p, pair q, column j, half h
     * holds W[32p + j][2q + h]; float32 panel p, column q, row j holds W[32p + j][q]. Undoing it with
     * libtorch's own view and permute gives W back bit for bit.
     */
    @Test
    void panelsHoldEachWeightOnceInTheDescribedOrder() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            for (ScalarType type : DTYPES) {
                if (!DensePanels.supported(type)) {
                    assertFalse(DensePanels.packs(torch.randn(32, 64).to(type)), type + ": no instructions for it, nothing packs");
                    continue;
                }
                torch.manual_seed(5);
                for (long[] shape : new long[][]{{32, 2}, {96, 1000}, {256, 4096}}) {
                    long n = shape[0], k = shape[1];
                    Tensor w = torch.randn(n, k).to(type);
                    Tensor panels = DensePanels.pack(w);
                    assertArrayEquals(new long[]{n, k}, panels.sizes().vec().get());
                    Tensor back = type == ScalarType.BFloat16 ? panels.view(n / 32, k / 2, 32, 2).permute(0, 2, 1, 3).reshape(n, k)
                            : panels.view(n / 32, k, 32).permute(0, 2, 1).reshape(n, k);
                    assertTrue(torch.equal(back, w), type + " " + n + " x " + k + ": the panels do not hold W in the described order");
                }
            }
        }
    }

    /**
     * Against the float64 product of the same numbers (the kernels sum in float32; bfloat16 rounds
     * once at the end, within 2^-8 of the value; float32 within 1e-6 of the terms' Σ|x w| — a wrong
     * slice of x or of the panels is off by the terms themselves): rows below, at and past a pass of
     * eight (1, 3, 8, 9, 20 — a prefill's many rows too), k not a multiple of 32 (odd in float32),
     * with and without a bias, and the result the same whatever the split over threads and whatever
     * the rows beside it.
     */
    @Test
    void anyRowsEqualTheExactProductToTheirRounding() {
        for (ScalarType type : DTYPES) {
            if (DensePanels.supported(type)) anyRowsEqualTheExactProduct(type);    // else nothing packs: panelsHoldEachWeightOnce checks the refusal
        }
    }

    /** The same for bfloat16 panels multiplied the other way than this CPU's measured one ({@link Bf16Products}). */
    @Test
    void bfloat16PanelsHoldTheirBoundsBothWays() {
        if (!DensePanels.supported(ScalarType.BFloat16)) return;      // nothing packs: panelsHoldEachWeightOnce checks the refusal
        Bf16Products measured = Bf16Gemm.products();
        Bf16Gemm.useProducts(measured == Bf16Products.PAIRS ? Bf16Products.WIDENED : Bf16Products.PAIRS);
        try {
            anyRowsEqualTheExactProduct(ScalarType.BFloat16);
        } finally {
            Bf16Gemm.useProducts(measured);
        }
    }

    private static void anyRowsEqualTheExactProduct(ScalarType type) {
        boolean bf16 = type == ScalarType.BFloat16;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(7);
            for (long[] shape : new long[][]{{64, 64}, {96, bf16 ? 1000 : 999}, {1024, 4096}}) {
                Tensor w = torch.randn(shape[0], shape[1]).to(type);
                Tensor panels = DensePanels.pack(w);
                Tensor bias = torch.randn(shape[0]).to(type);
                for (int rows : new int[]{1, 3, 8, 9, 20, 64}) {       // 64 rows of the widest: shares taken in claimed chunks
                    Tensor x = torch.randn(rows, 1, shape[1]).to(type);
                    for (Tensor b : new Tensor[]{bias, null}) {
                        assertTrue(DensePanels.applies(x, panels, b));
                        Tensor y = DensePanels.forward(x, panels, b);
                        assertArrayEquals(new long[]{rows, 1, shape[0]}, y.sizes().vec().get());
                        assertEquals(type.value, y.scalar_type().value);
                        Tensor xd = x.to(ScalarType.Double), wd = w.to(ScalarType.Double);
                        Tensor exact = b == null ? torch.linear(xd, wd) : torch.linear(xd, wd, new TensorOptional(b.to(ScalarType.Double)));
                        Tensor error = y.to(ScalarType.Double).sub(exact).abs();
                        Tensor bound = bf16 ? exact.abs().mul(new Scalar(Math.pow(2, -8))).add(new Scalar(1e-3))
                                : torch.linear(xd.abs(), wd.abs()).add(new Scalar(b == null ? 0 : 1)).mul(new Scalar(1e-6));
                        assertTrue(error.le(bound).all().item_bool(), type + " " + rows + " rows of " + shape[1] + ": max error " + error.max().item_double());
                        Tensor alone = DensePanels.forward(x.narrow(0, rows - 1, 1).clone(), panels, b);
                        assertTrue(torch.equal(alone, y.narrow(0, rows - 1, 1)), type + " " + rows + " rows: the last row alone gives other bits");
                        int threads = torch.get_num_threads();
                        torch.set_num_threads(1);
                        try {
                            assertTrue(torch.equal(DensePanels.forward(x, panels, b), y), type + " " + rows + " rows: one thread gives other bits than two");
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
        for (ScalarType type : DTYPES) {
            if (DensePanels.supported(type)) rowsLookedUpAreTheWeightsRows(type);
        }
    }

    private static void rowsLookedUpAreTheWeightsRows(ScalarType type) {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor weight = torch.randn(96, 40).to(type);
            Tensor panels = DensePanels.pack(weight);
            Tensor ids = org.bloomtune.tensor.Tensors.fromLongs(new long[]{0, 31, 32, 95, 64, 7}, 2, 3);
            assertTrue(torch.equal(torch.embedding(weight, ids), DensePanels.rows(panels, ids)), "rows differ from the weight's");
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> DensePanels.rows(panels, org.bloomtune.tensor.Tensors.fromLongs(new long[]{3, 96}, 1, 2)));
            assertTrue(e.getMessage().contains("96"), e.getMessage());
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> DensePanels.rows(panels, org.bloomtune.tensor.Tensors.fromLongs(new long[]{-1}, 1, 1)));
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        if (!DensePanels.supported(ScalarType.BFloat16)) return;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor w = torch.randn(32, 64).to(ScalarType.BFloat16);
            assertFalse(DensePanels.packs(torch.randn(48, 64).to(ScalarType.BFloat16)), "rows not a multiple of 32");
            assertFalse(DensePanels.packs(torch.randn(32, 63).to(ScalarType.BFloat16)), "odd k");
            assertEquals(DensePanels.supported(ScalarType.Float), DensePanels.packs(torch.randn(32, 63)), "float32, any k");
            assertFalse(DensePanels.packs(torch.randn(32, 64).to(ScalarType.Double)), "float64");
            assertFalse(DensePanels.packs(torch.randn(64, 32).to(ScalarType.BFloat16).t()), "non-contiguous");
            assertThrows(IllegalArgumentException.class, () -> DensePanels.pack(torch.randn(48, 64).to(ScalarType.BFloat16)));
            Tensor panels = DensePanels.pack(w);
            assertFalse(DensePanels.applies(torch.randn(1, 64), panels, null), "float32 input to bfloat16 panels");
            assertFalse(DensePanels.applies(torch.randn(1, 32).to(ScalarType.BFloat16), panels, null), "width mismatch");
            assertFalse(DensePanels.applies(torch.randn(1, 64).to(ScalarType.BFloat16), panels, torch.randn(31).to(ScalarType.BFloat16)), "bias length");
        }
    }
}
