package org.bloomtune.kernels;

import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The kernel's argmax equals libtorch's argmax (torch's rules) row by row, ties, NaN and ±inf included, in both dtypes. */
class RowsArgmaxTest {
    @BeforeAll
    static void load() {
        LibTorch.init();
        assertTrue(RowsArgmax.applies(torch.zeros(1, 4)), "the kernels are built for this machine");
    }

    /** Rows of {@code vocab} logits drawn from few values (ties are common), with NaN and infinities planted in some. */
    private static float[] logits(Random r, int rows, int vocab) {
        float[] v = new float[rows * vocab];
        for (int i = 0; i < v.length; i++) v[i] = r.nextInt(7) - 3;
        for (int row = 0; row < rows; row++) {
            int base = row * vocab;
            switch (row % 5) {
                case 1 -> v[base + r.nextInt(vocab)] = Float.NaN;
                case 2 -> { v[base + r.nextInt(vocab)] = Float.NaN; v[base + r.nextInt(vocab)] = Float.NaN; }
                case 3 -> v[base + r.nextInt(vocab)] = Float.POSITIVE_INFINITY;
                case 4 -> { for (int j = 0; j < vocab; j++) v[base + j] = Float.NEGATIVE_INFINITY; }
                default -> { }
            }
        }
        return v;
    }

    @Test
    void equalsTorchArgmaxInFloat32AndBfloat16() {
        Random r = new Random(11);
        for (int vocab : new int[]{1, 5, 33, 4095, 4096, 4097, 250880}) {
            int rows = vocab > 10000 ? 5 : 10;
            try (PointerScope scope = new PointerScope()) {
                Tensor f32 = Tensors.fromFloats(logits(r, rows, vocab), rows, vocab);
                for (ScalarType type : new ScalarType[]{ScalarType.Float, ScalarType.BFloat16}) {
                    Tensor t = f32.to(type);
                    assertTrue(RowsArgmax.applies(t));
                    assertArrayEquals(RowsArgmax.libtorch(t), RowsArgmax.of(t), type + " vocab " + vocab);
                }
            }
        }
    }

    @Test
    void aLaterBlockWinsOnlyWithALargerValueOrTheFirstNaN() {
        // bfloat16 rows are widened in blocks of 4096: the maximum in a later block, a tie across blocks, a NaN after a maximum.
        float[] v = new float[3 * 9000];
        v[8000] = 5;                                      // row 0: later block's maximum
        v[9000 + 10] = 2; v[9000 + 5000] = 2;             // row 1: tie across blocks → the first
        v[18000 + 1] = 7; v[18000 + 8500] = Float.NaN;    // row 2: the NaN wins
        try (PointerScope scope = new PointerScope()) {
            Tensor bf16 = Tensors.fromFloats(v, 3, 9000).to(ScalarType.BFloat16);
            assertArrayEquals(new long[]{8000, 10, 8500}, RowsArgmax.of(bf16));
            assertArrayEquals(new long[]{8000, 10, 8500}, RowsArgmax.libtorch(bf16));
        }
    }
}
