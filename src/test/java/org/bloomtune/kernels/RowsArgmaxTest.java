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

    /**
     * Picks merged from column ranges — as a product's threads write them, on two threads and out
     * of order — give libtorch's argmax of the whole rows, ties, NaN, ±inf and signed zeros included.
     */
    @Test
    void picksMergedFromRangesOnTwoThreadsGiveTheArgmaxOfTheWholeRows() throws Exception {
        assertTrue(RowsArgmax.Picks.available());
        Random r = new Random(5);
        for (int vocab : new int[]{1, 7, 4097, 250880}) {
            int rows = 10;
            float[] v = logits(r, rows, vocab);
            if (vocab > 1) {
                v[2 * vocab + 1] = -0.0f;                                        // row 9 below: a −0 before a +0, both the largest
                for (int j = 0; j < vocab; j++) v[9 * vocab + j] = -1;
                v[9 * vocab + vocab / 2] = 0.0f;
                v[9 * vocab] = -0.0f;
            }
            try (PointerScope scope = new PointerScope()) {
                Tensor f32 = Tensors.fromFloats(v, rows, vocab);
                for (ScalarType type : new ScalarType[]{ScalarType.Float, ScalarType.BFloat16}) {
                    Tensor t = f32.to(type);
                    java.util.List<long[]> ranges = new java.util.ArrayList<>();
                    for (long from = 0; from < vocab; ) {
                        long count = Math.min(vocab - from, 1 + r.nextInt(Math.max(1, vocab / 5)));
                        ranges.add(new long[]{from, count});
                        from += count;
                    }
                    java.util.Collections.shuffle(ranges, r);
                    try (RowsArgmax.Picks picks = new RowsArgmax.Picks(rows)) {
                        java.lang.foreign.MemorySegment y = org.bloomtune.tensor.NativeMemory.of(t);
                        boolean bf16 = type == ScalarType.BFloat16;
                        Thread other = new Thread(() -> { for (int i = 1; i < ranges.size(); i += 2) picks.merge(y, vocab, ranges.get(i)[0], ranges.get(i)[1], bf16); });
                        other.start();
                        for (int i = 0; i < ranges.size(); i += 2) picks.merge(y, vocab, ranges.get(i)[0], ranges.get(i)[1], bf16);
                        other.join();
                        assertArrayEquals(RowsArgmax.libtorch(t), picks.indices(), type + " vocab " + vocab + " in " + ranges.size() + " ranges");
                    }
                }
            }
        }
    }

    @Test
    void picksRefuseARangeOutsideTheRowsAndARowNeverMerged() {
        try (PointerScope scope = new PointerScope(); RowsArgmax.Picks picks = new RowsArgmax.Picks(2)) {
            Tensor t = torch.zeros(2, 8);
            java.lang.foreign.MemorySegment y = org.bloomtune.tensor.NativeMemory.of(t);
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> picks.merge(y, 8, 4, 5, false));
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> picks.merge(y, 16, 0, 16, false));
            org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, picks::indices);
            picks.merge(y, 8, 0, 8, false);
            assertArrayEquals(new long[]{0, 0}, picks.indices());
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
