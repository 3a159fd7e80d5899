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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Against the float64 product of the same float32 numbers: each output is a float32 sum of its k
 * products, so it lies within a few units of float32 rounding of Σ|products| — 1e-6 of it bounds
 * that with room at these sizes, while a product over a wrong slice of A or B (a tile, a panel, a
 * chunk of k, a thread's block) is off by the products themselves. Sizes exercise the edges: rows
 * not a multiple of the 8-row tile, columns not of the 32-column panel or the 64-column block two
 * threads split, k not of the 16 a transpose takes, k past the 1024 of one chunk. On a CPU without
 * AVX-512F the kernel must refuse every call.
 */
class F32GemmTest {
    private static final long[][] SHAPES = {{17, 70, 38}, {203, 1000, 1024}, {1064, 258, 96}, {77, 64, 4098}, {72, 2100, 97}, {40, 31, 1025}};

    @Test
    void productsEqualTheExactOnesToFloat32Sums() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            torch.manual_seed(5);
            for (long[] s : SHAPES) {
                long m = s[0], n = s[1], k = s[2];
                Tensor x = torch.randn(m, k);
                Tensor w = torch.randn(n, k);                       // a linear layer's [out, in]
                Tensor bias = torch.randn(n);
                Tensor dy = torch.randn(m, n);
                if (!F32Gemm.supported()) {
                    assertFalse(F32Gemm.applies(x, w, true), "no AVX-512F: libtorch's ops");
                    continue;
                }
                String shape = m + "×" + n + "×" + k;
                Tensor xd = x.to(ScalarType.Double), wd = w.to(ScalarType.Double);
                for (Tensor b : new Tensor[]{bias, null}) {
                    Tensor y = F32Gemm.linear(x.view(1, m, k), w, b);
                    assertArrayEquals(new long[]{1, m, n}, y.sizes().vec().get());
                    Tensor exact = b == null ? torch.linear(xd, wd) : torch.linear(xd, wd, new TensorOptional(b.to(ScalarType.Double)));
                    assertSummed(y.view(m, n), exact, xd.abs().mm(wd.abs().t()), "x Wᵀ + b " + shape);
                }
                Tensor dyd = dy.to(ScalarType.Double);
                assertSummed(F32Gemm.inputGradient(dy, w), dyd.mm(wd), dyd.abs().mm(wd.abs()), "dy W " + shape);

                Tensor logits = torch.zeros(m, n);
                F32Gemm.linearInto(logits, x, w);
                assertSummed(logits, xd.mm(wd.t()), xd.abs().mm(wd.abs().t()), "into a buffer " + shape);

                Tensor acc = torch.randn(m, k);
                Tensor expected = acc.to(ScalarType.Double).add(dyd.mm(wd));
                F32Gemm.addProductInto(acc, dy, w);
                assertSummed(acc, expected, dyd.abs().mm(wd.abs()).add(expected.abs()), "added into a buffer " + shape);
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Tensor w = torch.randn(96, 64);
            Tensor x = torch.randn(F32Gemm.MIN_ROWS, 64);
            assertTrue(F32Gemm.applies(x, w, true) || !F32Gemm.supported());
            assertFalse(F32Gemm.applies(torch.randn(F32Gemm.MIN_ROWS - 1, 64), w, true), "a decode step's few rows");
            assertFalse(F32Gemm.applies(x.to(ScalarType.BFloat16), w.to(ScalarType.BFloat16), true), "bfloat16");
            assertFalse(F32Gemm.applies(x.to(ScalarType.Double), w.to(ScalarType.Double), true), "float64");
            assertFalse(F32Gemm.applies(torch.randn(F32Gemm.MIN_ROWS, 63), w, true), "k of another size than W's");
            assertFalse(F32Gemm.applies(x, w.t(), true), "W not contiguous");
            try (GradMode on = GradMode.on()) {
                assertFalse(F32Gemm.applies(x.clone().requires_grad_(true), w, true), "inside autograd");
            }
            assertThrows(IllegalArgumentException.class, () -> F32Gemm.linear(torch.randn(F32Gemm.MIN_ROWS - 1, 64), w, null));
        }
    }

    /** |got − exact| ≤ 1e-6 · Σ|products| (+ a floor for outputs whose terms all but vanish), element by element. */
    private static void assertSummed(Tensor got, Tensor exact, Tensor magnitude, String what) {
        Tensor excess = got.to(ScalarType.Double).sub(exact).abs().sub(magnitude.mul(new Scalar(1e-6))).max();
        double worst = excess.item_double();
        assertTrue(worst <= 1e-9, what + ": an output is off by " + worst + " more than 1e-6 of its terms' magnitude");
    }
}
