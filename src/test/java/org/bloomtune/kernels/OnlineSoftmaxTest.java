package org.bloomtune.kernels;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The online softmax's block recurrence against exp and sums in float64, natively and in libtorch ops. */
class OnlineSoftmaxTest {
    static final int ROWS = 5, COLUMNS = 1000, BLOCK = 300;              // blocks of 300, 300, 300, 100

    @Test
    void nativeKernelIsBuiltHere() {
        // CI runs on Linux x86-64, where the Maven build compiles native/; elsewhere the fallback runs.
        assertTrue(NativeKernels.available(), "bloomtune-kernels was not built");
    }

    @Test
    void nativeBlocksMatchFloat64() {
        assertRecurrence((b, st) -> OnlineSoftmax.update(b, st, OnlineSoftmax.Implementation.NATIVE), 1e-6);
    }

    @Test
    void libtorchOpsMatchFloat64() {
        assertRecurrence((b, st) -> OnlineSoftmax.update(b, st, OnlineSoftmax.Implementation.LIBTORCH), 1e-6);
    }

    /** Each block is exp(x − running max), each rescale exp(old max − new max), the final sum Σ exp(x − max). */
    private static void assertRecurrence(BiConsumer<Tensor, OnlineSoftmax.State> update, double tolerance) {
        try (PointerScope scope = new PointerScope()) {
            torch.manual_seed(5);
            // Spread wide, rising along the row so the running max moves between blocks, with a
            // few logits far below the rest (exp underflows there).
            Tensor logits = torch.randn(ROWS, COLUMNS).mul_(new Scalar(8)).add_(torch.arange(new Scalar(COLUMNS)).to(ScalarType.Float).mul_(new Scalar(0.02)));
            logits.narrow(1, 10, 3).fill_(new Scalar(-1e4));
            double[][] x = rows(logits);
            OnlineSoftmax.State state = OnlineSoftmax.State.start(ROWS, DType.F32, new Device("cpu"));
            double[] runMax = new double[ROWS];
            java.util.Arrays.fill(runMax, Double.NEGATIVE_INFINITY);
            for (int start = 0; start < COLUMNS; start += BLOCK) {
                int n = Math.min(BLOCK, COLUMNS - start);
                Tensor block = logits.narrow(1, start, n).contiguous();
                update.accept(block, state);
                float[] got = Tensors.toFloats(block);
                float[] rescale = Tensors.toFloats(state.rescale());
                for (int r = 0; r < ROWS; r++) {
                    double newMax = runMax[r];
                    for (int c = 0; c < n; c++) newMax = Math.max(newMax, x[r][start + c]);
                    double expectedRescale = runMax[r] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(runMax[r] - newMax);
                    assertEquals(expectedRescale, rescale[r], tolerance * Math.max(expectedRescale, 1e-30), "rescale row " + r);
                    for (int c = 0; c < n; c++) {
                        // x − max is formed in float32 (rounded once), as both implementations do.
                        double expected = Math.exp((float) x[r][start + c] - (float) newMax);
                        double err = Math.abs(got[r * n + c] - expected);
                        // Below e^-87.3 the result only has to stay under float's smallest normal.
                        assertTrue(err <= tolerance * expected || (expected < 1.3e-38 && got[r * n + c] < 1.3e-38),
                                "row " + r + " column " + (start + c) + ": " + got[r * n + c] + " vs " + expected);
                    }
                    runMax[r] = newMax;
                }
            }
            double[] sums = Tensors.toDoubles(state.sum());
            float[] maxes = Tensors.toFloats(state.max());
            for (int r = 0; r < ROWS; r++) {
                double sum = 0;
                for (double v : x[r]) sum += Math.exp(v - runMax[r]);
                assertEquals(runMax[r], maxes[r], 0, "max row " + r);
                assertEquals(sum, sums[r], tolerance * sum, "sum row " + r);
            }
        }
    }

    /** A bfloat16 block comes back as its widened float32 block's result rounded, with the same running state. */
    @Test
    void bfloat16BlocksAreTheFloatResultRounded() {
        for (OnlineSoftmax.Implementation implementation : OnlineSoftmax.Implementation.values()) {
            try (PointerScope scope = new PointerScope()) {
                torch.manual_seed(6);
                Tensor narrow = torch.randn(ROWS, COLUMNS).mul_(new Scalar(8))
                        .add_(torch.arange(new Scalar(COLUMNS)).to(ScalarType.Float).mul_(new Scalar(0.02))).to(ScalarType.BFloat16);
                Tensor wide = narrow.to(ScalarType.Float);
                OnlineSoftmax.State expected = OnlineSoftmax.State.start(ROWS, DType.F32, new Device("cpu"));
                OnlineSoftmax.State got = OnlineSoftmax.State.start(ROWS, DType.F32, new Device("cpu"));
                for (int start = 0; start < COLUMNS; start += BLOCK) {
                    int n = Math.min(BLOCK, COLUMNS - start);
                    Tensor f = wide.narrow(1, start, n).contiguous();
                    Tensor b = narrow.narrow(1, start, n).contiguous();
                    OnlineSoftmax.update(f, expected, implementation);
                    OnlineSoftmax.update(b, got, implementation);
                    String what = implementation + " block at " + start;
                    assertTrue(torch.equal(f.to(ScalarType.BFloat16), b), what + ": values differ from the float32 result rounded");
                    assertTrue(torch.equal(expected.rescale(), got.rescale()), what + ": rescale");
                    assertTrue(torch.equal(expected.max(), got.max()), what + ": max");
                    double[] want = Tensors.toDoubles(expected.sum());
                    double[] have = Tensors.toDoubles(got.sum());
                    for (int r = 0; r < ROWS; r++) assertEquals(want[r], have[r], 1e-6 * want[r], what + ": sum row " + r);
                }
            }
        }
    }

    @Test
    void float64BlocksTakeTheLibtorchPath() {
        try (PointerScope scope = new PointerScope()) {
            Tensor block = Tensors.fromFloats(new float[]{0, 1, 2, 3, 4, 5}, 2, 3).to(ScalarType.Double);
            OnlineSoftmax.State state = OnlineSoftmax.State.start(2, DType.F64, new Device("cpu"));
            OnlineSoftmax.update(block, state);
            assertEquals(Math.exp(-2), Tensors.toDoubles(block)[0], 1e-15);
            assertEquals(1 + Math.exp(-1) + Math.exp(-2), Tensors.toDoubles(state.sum())[1], 1e-15);
        }
    }

    @Test
    void badShapesAreRefusedBeforeNativeCode() {
        try (PointerScope scope = new PointerScope()) {
            OnlineSoftmax.State state = OnlineSoftmax.State.start(3, DType.F32, new Device("cpu"));
            IllegalArgumentException rows = assertThrows(IllegalArgumentException.class,
                    () -> OnlineSoftmax.update(torch.zeros(4, 8), state));
            assertTrue(rows.getMessage().contains("[3]"), rows.getMessage());
            IllegalArgumentException type = assertThrows(IllegalArgumentException.class,
                    () -> OnlineSoftmax.update(torch.zeros(new long[]{3, 8}, Tensors.options(DType.I64, new Device("cpu"))), state));
            assertTrue(type.getMessage().contains("float32, float64 or bfloat16"), type.getMessage());
        }
    }

    private static double[][] rows(Tensor t) {
        float[] flat = Tensors.toFloats(t);
        double[][] out = new double[(int) t.size(0)][(int) t.size(1)];
        for (int r = 0; r < out.length; r++) {
            for (int c = 0; c < out[r].length; c++) out[r][c] = flat[r * out[r].length + c];
        }
        return out;
    }
}
