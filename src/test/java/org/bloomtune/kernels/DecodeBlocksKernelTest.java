package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@link DecodeBlocksKernel} checks before an address goes to C: a table whose linears do not
 * chain, and a step whose tensors do not fit the table (the numbers the native step computes are
 * {@code DecodeBlocksTest}'s).
 */
class DecodeBlocksKernelTest {
    static final long H = 64, HEADS = 4, ROWS = 2, PAST = 3, CAPACITY = 8;

    @Test
    void aTableWhoseLinearsDoNotChainIsRefusedNamingTheBlockAndLinear() {
        try (Arena arena = Arena.ofConfined()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DecodeBlocksKernel.layers(arena, List.of(layer(H, 2 * H)), null));
            assertTrue(e.getMessage().contains("block 0: linear 1 is 64 → 128, not 64 → 64"), e.getMessage());
        }
    }

    @Test
    void aStepWhoseTensorsDoNotFitTheTableIsRefusedBeforeAnyNativeCall() {
        try (Arena arena = Arena.ofConfined()) {
            DecodeBlocksKernel.Table table = DecodeBlocksKernel.layers(arena, List.of(layer(H, H)), null);
            DecodeBlocksKernel.Shape shape = new DecodeBlocksKernel.Shape(ROWS, H, HEADS, H / HEADS, PAST, CAPACITY, false, false, 1e-5);
            Tensor hidden = torch.zeros(ROWS, H);
            Tensor[] kv = {torch.zeros(ROWS * HEADS, H / HEADS, CAPACITY), torch.zeros(ROWS * HEADS, CAPACITY, H / HEADS)};
            Tensor alibi = torch.zeros(ROWS * HEADS, 1, PAST + 1);
            Tensor masked = torch.zeros(ROWS, 1, 1, PAST + 1).to(torch.ScalarType.Bool);
            Tensor[] scratch = scratch(4 * H);
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(kv), alibi, masked, scratch(3 * H)), "scratch 5");
            Tensor[] oddCopies = scratch(4 * H);
            oddCopies[0] = torch.zeros(ROWS + 1, H);        // the layer norm's copies: a whole number of [rows, H]
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(kv), alibi, masked, oddCopies), "scratch 0");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden.to(torch.ScalarType.BFloat16), List.<Tensor[]>of(kv), alibi, masked, scratch), "hidden");
            refused(() -> DecodeBlocksKernel.run(table, new DecodeBlocksKernel.Shape(ROWS, H, HEADS, H / HEADS, CAPACITY, CAPACITY, false, false, 1e-5),
                    hidden, List.<Tensor[]>of(kv), alibi, masked, scratch), "shape");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(kv), alibi, masked.narrow(3, 0, PAST), scratch), "mask");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(new Tensor[]{kv[0], kv[0]}), alibi, masked, scratch), "cache buffers");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.of(), alibi, masked, scratch), "one key and value buffer per block");
        }
    }

    private static void refused(Runnable step, String naming) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, step::run);
        assertTrue(e.getMessage().contains(naming), e.getMessage());
    }

    /** Scratch rows H, 3H, H, H, H wide and the last {@code last} wide. */
    private static Tensor[] scratch(long last) {
        return new Tensor[]{torch.zeros(ROWS, H), torch.zeros(ROWS, 3 * H), torch.zeros(ROWS, H), torch.zeros(ROWS, H), torch.zeros(ROWS, H),
                torch.zeros(ROWS, last)};
    }

    /** A float32 block of width H whose output projection is H → {@code denseOut}. */
    private static DecodeBlocksKernel.Layer layer(long h, long denseOut) {
        Tensor ones = torch.ones(h);
        return new DecodeBlocksKernel.Layer(ones, ones, ones, ones, dense(h, 3 * h), dense(h, denseOut), dense(h, 4 * h), dense(4 * h, h));
    }

    private static RowKernel dense(long in, long out) {
        return RowKernel.dense("bt_f32_rows_linear", torch.zeros(out, in), torch.zeros(out));
    }
}
