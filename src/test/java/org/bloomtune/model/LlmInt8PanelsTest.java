package org.bloomtune.model;

import org.bloomtune.kernels.LlmInt8Panels;
import org.bloomtune.kernels.LlmInt8Rows;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LLM.int8 over values in panels (native/llm_int8_panels.c) against three independent answers: the
 * row-major decode kernel ({@link LlmInt8Rows}: the same arithmetic, so the same bits), the op-by-op
 * path ({@code _int_mm} or the row kernels, rescale, addmm for the outliers) and bitsandbytes'
 * algorithm in plain Java — at one to eight rows and a prefill's many, float32 and bfloat16, with and
 * without outlier columns and a bias.
 */
class LlmInt8PanelsTest {

    @Test
    void equalsTheRowMajorKernelTheOpByOpPathAndTheJavaReference() {
        if (!LlmInt8Panels.supported()) {
            assertFalse(LlmInt8Panels.packs(torch.zeros(new long[]{32, 64}).to(ScalarType.Char)), "no AVX512-VNNI: nothing packs");
            return;
        }
        Random r = new Random(5);
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            for (int[] shape : new int[][]{{32, 4}, {96, 1000}, {608, 4096}}) {
                int n = shape[0], k = shape[1];
                Int8Weight w = Int8Weight.quantize(Tensors.fromFloats(Int8LinearTest.random(r, n * k, 0.05f), n, k));
                Tensor panels = LlmInt8Panels.pack(w.values());
                assertTrue(torch.equal(panels.view(n / 32, k / 4, 32, 4).permute(0, 2, 1, 3).reshape(n, k), w.values()),
                        n + " x " + k + ": the panels do not hold the values in the described order");
                Tensor bias = Tensors.fromFloats(Int8LinearTest.random(r, n, 0.5f), n);
                long[] w8 = Tensors.toLongs(w.values());
                float[] wScale = Tensors.toFloats(w.scales());
                for (int rows : new int[]{1, 2, 5, 8, 9, 21}) {
                    for (boolean outliers : new boolean[]{false, true}) {
                        float[] x = Int8LinearTest.random(r, rows * k, 1f);
                        if (outliers) for (int m = 0; m < rows; m += 2) x[m * k + k / 2] *= 12f;     // one column past 6.0, in some rows
                        String what = n + "×" + k + ", " + rows + " rows" + (outliers ? ", an outlier column" : "");
                        Tensor xf = Tensors.fromFloats(x, rows, k);
                        for (Tensor in : new Tensor[]{xf, xf.to(ScalarType.BFloat16)}) {
                            boolean bf16 = in.scalar_type().value == ScalarType.BFloat16.value;
                            String which = what + (bf16 ? " bf16" : " f32");
                            Tensor b = bias.to(in.scalar_type());
                            for (Tensor withBias : new Tensor[]{null, b}) {
                                Tensor ours = LlmInt8Panels.forward(in, panels, w.scales(), withBias, 6.0, null);
                                assertTrue(ours.scalar_type().value == in.scalar_type().value, which + ": x's dtype out");
                                if (rows <= LlmInt8Rows.MAX_ROWS) {
                                    assertTrue(torch.equal(ours, LlmInt8Rows.forward(in, w.values(), w.scales(), withBias, 6.0)),
                                            which + (withBias == null ? "" : " + bias") + ": other bits than the row-major kernel");
                                }
                                Tensor opByOp = LlmInt8.opByOp(in, w, 6.0);
                                Tensor expected = withBias == null ? opByOp : opByOp.add(withBias);
                                if (outliers) assertClose(Tensors.toFloats(expected.to(ScalarType.Float)), Tensors.toFloats(ours.to(ScalarType.Float)),
                                        bf16 ? 8e-3 : 1e-6, which + " vs op by op");
                                else assertTrue(torch.equal(ours, expected), which + (withBias == null ? "" : " + bias") + ": the integer path must agree bit for bit");
                            }
                            if (!bf16) assertClose(Int8LinearTest.llmInt8Reference(x, w8, wScale, 6.0, rows, k, n),
                                    Tensors.toFloats(LlmInt8Panels.forward(in, panels, w.scales(), null, 6.0, null)), 1e-4, which + " vs Java");
                            Tensor two = LlmInt8Panels.forward(in, panels, w.scales(), b, 6.0, null);
                            int threads = torch.get_num_threads();
                            torch.set_num_threads(1);
                            try {
                                assertTrue(torch.equal(LlmInt8Panels.forward(in, panels, w.scales(), b, 6.0, null), two), which + ": one thread gives other bits than two");
                            } finally {
                                torch.set_num_threads(threads);
                            }
                        }
                    }
                }
                try (Tensor ids = Tensors.fromLongs(new long[]{0, n - 1, n / 2, 31}, 2, 2)) {
                    assertTrue(torch.equal(torch.embedding(w.values(), ids), LlmInt8Panels.values(panels, ids)), n + " x " + k + ": rows read back differ");
                }
            }
        }
    }

    @Test
    void refusesWhatItCannotTake() {
        if (!LlmInt8Panels.supported()) return;      // nothing packs: the first test says so
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            assertFalse(LlmInt8Panels.packs(torch.zeros(new long[]{48, 64}).to(ScalarType.Char)), "rows not a multiple of 32");
            assertFalse(LlmInt8Panels.packs(torch.zeros(new long[]{32, 66}).to(ScalarType.Char)), "k not a multiple of 4");
            assertFalse(LlmInt8Panels.packs(torch.zeros(new long[]{32, 64})), "float32 values");
            Tensor panels = LlmInt8Panels.pack(torch.zeros(new long[]{32, 64}).to(ScalarType.Char));
            Tensor scales = torch.ones(32);
            assertFalse(LlmInt8Panels.applies(torch.randn(1, 64).to(ScalarType.Double), panels, scales, null), "float64 input");
            assertFalse(LlmInt8Panels.applies(torch.randn(1, 60), panels, scales, null), "width mismatch");
            assertFalse(LlmInt8Panels.applies(torch.randn(1, 64), panels, torch.ones(31), null), "scale count");
            assertFalse(LlmInt8Panels.applies(torch.randn(1, 64), panels, scales, torch.ones(32).to(ScalarType.BFloat16)), "bias in another dtype");
            assertFalse(LlmInt8Panels.applies(torch.randn(2, 128).narrow(1, 0, 64), panels, scales, null), "x not contiguous");
            assertThrows(IllegalArgumentException.class, () -> LlmInt8Panels.forward(torch.randn(1, 60), panels, scales, null, 6.0, null));
        }
    }

    /** Every element within {@code relative} of the largest expected magnitude. */
    private static void assertClose(float[] expected, float[] actual, double relative, String what) {
        double bound = relative * Int8LinearTest.maxAbs(expected);
        double diff = Int8LinearTest.maxDiff(actual, expected);
        assertTrue(diff <= bound, what + ": max difference " + diff + " > " + bound);
    }
}
