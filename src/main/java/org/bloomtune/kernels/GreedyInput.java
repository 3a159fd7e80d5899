package org.bloomtune.kernels;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * A greedy loop's input for its next decode step, made in one native call (native/decode_blocks.c's
 * {@code bt_decode_greedy_input}) in memory the loop keeps: the embeddings' layer norm of the rows
 * it gathered, in place — the float math of the decode step's own norms — and one key more in the
 * ALiBi bias and the mask, unmasked at each row's next position. A decode step's Java between two
 * native steps costs tens of microseconds a piece, so the loop makes one call of it.
 */
public final class GreedyInput {
    private static final MethodHandle INPUT = NativeKernels.available() ? NativeKernels.bind("bt_decode_greedy_input", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_DOUBLE,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
            ValueLayout.ADDRESS)) : null;

    private GreedyInput() {}

    /**
     * Normalizes {@code x} [rows, h] in place by the layer norm's {@code weight} and {@code bias} [h]
     * and widens the ALiBi bias [rows · heads, positions] and the mask [rows, positions] (one byte a
     * key, 1: masked) to positions + 1 keys in place, the new key of each row at position
     * {@code seen[row]} (int64, counted on) with the heads' float32 {@code slopes}. Every size is
     * checked against the memory given before the call.
     */
    public static void prepare(MemorySegment x, MemorySegment weight, MemorySegment bias, long rows, long h, double eps, boolean bf16,
                               MemorySegment alibi, MemorySegment masked, long heads, long positions, MemorySegment slopes, MemorySegment seen) {
        long element = bf16 ? 2 : 4;
        long width = positions + 1;
        if (rows < 1 || h < 1 || heads < 1 || positions < 0 || x.byteSize() < rows * h * element || weight.byteSize() < h * element
                || bias.byteSize() < h * element || alibi.byteSize() < rows * heads * width * element || masked.byteSize() < rows * width
                || slopes.byteSize() < heads * Float.BYTES || seen.byteSize() < rows * Long.BYTES) {
            throw new IllegalArgumentException("bt_decode_greedy_input: " + rows + " rows of " + h + ", " + heads + " heads and " + width
                    + " keys do not fit the memory given");
        }
        try {
            INPUT.invokeExact(x, weight, bias, rows, h, eps, bf16 ? 1 : 0, alibi, masked, heads, positions, slopes, seen);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_decode_greedy_input failed", t);
        }
    }
}
