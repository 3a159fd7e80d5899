package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Each row's argmax, with torch.argmax's rules (first index of the largest value; a NaN counts as
 * the largest), by native/rows_argmax.c: what greedy decoding takes from a step's logits. libtorch's
 * bfloat16 argmax is a scalar loop, and copying the logits out as floats costs more than the choice.
 * Elsewhere (CUDA, other dtypes, no kernels built) libtorch's argmax.
 */
public final class RowsArgmax {
    private static final MethodHandle F32 = bind("bt_rows_argmax_f32");
    private static final MethodHandle BF16 = bind("bt_rows_argmax_bf16");
    private static final MethodHandle MERGE_F32 = bindMerge("bt_rows_argmax_merge_f32");
    private static final MethodHandle MERGE_BF16 = bindMerge("bt_rows_argmax_merge_bf16");

    private RowsArgmax() {}

    /** {@code logits} [rows, V] (V ≥ 1) → each row's argmax. */
    public static long[] of(Tensor logits) {
        if (logits.dim() != 2 || logits.size(1) < 1) throw new IllegalArgumentException("argmax needs [rows, V ≥ 1] logits, got " + logits.dim() + " dims");
        return applies(logits) ? kernel(logits) : libtorch(logits);
    }

    static boolean applies(Tensor logits) {
        int type = logits.scalar_type().value;
        return F32 != null && (type == ScalarType.Float.value || type == ScalarType.BFloat16.value)
                && logits.is_contiguous() && logits.is_cpu();
    }

    static long[] libtorch(Tensor logits) {
        try (Tensor ids = logits.argmax(new LongOptional(-1), false)) {
            return Tensors.toLongs(ids);
        }
    }

    private static long[] kernel(Tensor logits) {
        long rows = logits.size(0);
        long vocab = logits.size(1);
        boolean bf16 = logits.scalar_type().value == ScalarType.BFloat16.value;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG, rows);
            (bf16 ? BF16 : F32).invokeExact(NativeMemory.of(logits), out, rows, vocab);
            return out.toArray(ValueLayout.JAVA_LONG);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_rows_argmax failed", t);
        }
    }

    /**
     * Each row's argmax gathered while a product writes the logits: the threads that compute a range
     * of columns {@link #merge} it at once, while it is still in their cache, instead of one thread
     * reading all B × V logits afterwards. Ranges may come from any thread in any order, and together
     * must cover each row; the answer is {@link #of}'s over the whole rows.
     */
    public static final class Picks implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        private final MemorySegment best;
        private final long rows;
        private long[] whole;           // where libtorch's argmax took the logits whole

        /** Picks for {@code rows} rows, none merged yet. */
        public Picks(long rows) {
            if (rows < 1) throw new IllegalArgumentException("picks need at least one row, got " + rows);
            this.rows = rows;
            this.best = arena.allocate(ValueLayout.JAVA_LONG, rows);        // zeroed: below every candidate
        }

        /** Whether this machine merges natively; where not, the caller takes {@link #of} on the whole logits. */
        public static boolean available() { return MERGE_F32 != null; }

        /**
         * Merges columns [from, from + count) of every row of {@code y}, [rows, ldy] float32 or bfloat16
         * ({@code bf16}) at the segment's start.
         */
        public void merge(MemorySegment y, long ldy, long from, long count, boolean bf16) {
            long element = bf16 ? 2 : 4;
            if (from < 0 || count < 0 || from + count > ldy || ldy >= 1L << 32 || y.byteSize() < ((rows - 1) * ldy + from + count) * element) {
                throw new IllegalArgumentException("argmax merge of columns [" + from + ", " + (from + count) + ") of " + rows + " rows of "
                        + ldy + " over " + y.byteSize() + " bytes");
            }
            try {
                (bf16 ? MERGE_BF16 : MERGE_F32).invokeExact(y, ldy, rows, from, count, best);
            } catch (Throwable t) {
                throw new IllegalStateException("FFM call to bt_rows_argmax_merge failed", t);
            }
        }

        /** Takes the argmax of {@code logits} [rows, V] whole: for a product that did not merge as it wrote. */
        public void mergeAll(Tensor logits) {
            if (logits.dim() != 2 || logits.size(0) != rows) {
                throw new IllegalArgumentException("argmax of " + rows + " rows given logits " + Tensors.shapeString(logits));
            }
            if (available() && applies(logits)) {
                merge(NativeMemory.of(logits), logits.size(1), 0, logits.size(1), logits.scalar_type().value == ScalarType.BFloat16.value);
            } else {
                whole = of(logits);
            }
        }

        /** Each row's argmax; every row must have been merged. */
        public long[] indices() {
            return whole != null ? whole.clone() : RowsArgmax.indices(best, rows);
        }

        @Override
        public void close() { arena.close(); }
    }

    /** Each row's argmax from the keys [rows] native/rows_argmax.c's merges left (the index in their low half, stored as 2³² − 1 − index); every row must have been merged. */
    static long[] indices(MemorySegment keys, long rows) {
        long[] out = new long[(int) rows];
        for (int r = 0; r < out.length; r++) {
            long key = keys.getAtIndex(ValueLayout.JAVA_LONG, r);
            if (key == 0) throw new IllegalStateException("row " + r + " of the argmax was never merged");
            out[r] = 0xFFFFFFFFL - (key & 0xFFFFFFFFL);
        }
        return out;
    }

    private static MethodHandle bindMerge(String name) {
        if (!NativeKernels.available()) return null;
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        return NativeKernels.bind(name, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, l, l, l, l, ValueLayout.ADDRESS));
    }

    private static MethodHandle bind(String name) {
        if (!NativeKernels.available()) return null;
        return NativeKernels.bind(name, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    }
}
