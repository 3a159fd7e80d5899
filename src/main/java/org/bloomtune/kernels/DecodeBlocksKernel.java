package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * Every block of a decode step in one native call per thread (native/decode_blocks.c): the layer
 * norms, residual adds and GELU in C, each linear by the row kernel its Java path calls
 * ({@link RowKernel}), the attention by {@link DecodeAttention}'s kernel, the threads meeting at a
 * spin barrier between the parts instead of a hand-off per kernel. For greedy decoding the same
 * call goes on through ln_f and the lm_head to each row's argmax ({@link #argmaxIfFits}), the
 * threads merging the logits as they write them. This class owns the C structs' layout: every field
 * is 8 bytes, written by index.
 */
public final class DecodeBlocksKernel {
    /**
     * Rows a native step takes: the panel kernels multiply any rows in one call; the row-major ones
     * take eight and give no row kernel past that, so a step of more rows with them runs op by op.
     */
    public static final int MAX_ROWS = 16;

    private static final long WORD = 8;
    private static final long LINEAR_WORDS = 9;
    private static final long LAYER_WORDS = 4 + 4 * LINEAR_WORDS + 2;
    static final long STEP_WORDS = 36;
    /** Words of one thread's claim slot for one linear or one layer's attention (decode_blocks.c's CLAIM_STRIDE: a cache line). */
    private static final long CLAIM_WORDS = 8;

    // bt_linear
    private static final int CALL = 0, FUNCTION = 1, WEIGHT = 2, SCALES = 3, BIAS = 4, N = 5, K = 6, WEIGHT_BYTES = 7, THRESHOLD = 8;
    // bt_decode_layer: the four linears from word 4, then the cache buffers
    private static final int LN1_WEIGHT = 0, LN1_BIAS = 1, LN2_WEIGHT = 2, LN2_BIAS = 3, LINEARS = 4;
    private static final long KEYS = LINEARS + 4 * LINEAR_WORDS, VALUES = KEYS + 1;
    // bt_decode_step
    private static final int LAYERS = 0, ROWS = 1, HIDDEN = 2, HEADS = 3, HEAD_DIM = 4, PAST = 5, CAPACITY = 6, BF16 = 7,
            RESIDUAL_FROM_LAYERNORM = 8, ATTENTION_PARTS = 9, MIN_WEIGHT_ROWS = 10, EPS = 11, ALPHA = 12, LAYER = 13,
            ATTENTION = 14, HIDDEN_STATE = 15, ALIBI = 16, MASKED = 17, SCRATCH = 18, THREADS = 24, READY = 25,
            CLAIMS = 30, LNF_WEIGHT = 31, LNF_BIAS = 32, HEAD = 33, LOGITS = 34, PICKS = 35;
    /** The word a thread sets when it cannot enter, so no other waits for it (also how a test ends a wait). */
    static final int ABANDONED = 29;

    private static final VarHandle RELEASE_LONG = ValueLayout.JAVA_LONG.varHandle();

    private static final MethodHandle KERNEL = bind();
    private static final MemorySegment ATTENTION_KERNEL = KERNEL == null ? null : DecodeAttention.kernelAddress();

    private DecodeBlocksKernel() {}

    /** True when the kernels library is loaded (the linears' own kernels are checked by whoever builds the {@link Layer}s). */
    public static boolean available() { return KERNEL != null && ATTENTION_KERNEL != null; }

    /** One block's layer norms (weight and bias [H] in the compute dtype) and its four linears' kernels. */
    public record Layer(Tensor ln1Weight, Tensor ln1Bias, Tensor ln2Weight, Tensor ln2Bias,
                        RowKernel queryKeyValue, RowKernel dense, RowKernel denseHTo4h, RowKernel dense4hToH) {}

    /** A step's shape: rows of the batch, hidden size, heads, head size, cached positions, the cache's capacity. */
    public record Shape(long rows, long hidden, long heads, long headDim, long past, long capacity, boolean bf16,
                        boolean residualFromLayernorm, double eps) {}

    /** ln_f's parameters (weight and bias [H] in the compute dtype) and the tied lm_head's kernel, H → V. */
    public record Head(Tensor lnfWeight, Tensor lnfBias, RowKernel lmHead) {}

    /**
     * The blocks' parameters as the C side reads them: hidden size H, float32 or bfloat16, no cache
     * buffers yet; and the head's — the lm_head's struct, ln_f's parameters, the vocabulary V — or
     * {@code head} NULL where the model's head has no native form.
     */
    public record Table(MemorySegment segment, int layers, long hidden, boolean bf16, MemorySegment head, MemorySegment lnfWeight,
                        MemorySegment lnfBias, long vocabulary) {
        /** Whether steps of this table can go on to each row's argmax. */
        public boolean hasHead() { return !head.equals(MemorySegment.NULL); }
    }

    /**
     * The blocks' table in {@code arena}. Every linear must chain H → 3H, H → H, H → 4H, 4H → H with
     * one H throughout, and every layer norm parameter be [H], contiguous, CPU, one floating dtype;
     * {@code head} (or null) must take H, its ln_f's parameters as the blocks' layer norms'.
     */
    public static Table layers(Arena arena, List<Layer> layers, Head head) {
        if (layers.isEmpty()) throw new IllegalArgumentException("no blocks");
        long h = layers.getFirst().queryKeyValue().inFeatures();
        int type = layers.getFirst().ln1Weight().scalar_type().value;
        if (type != ScalarType.Float.value && type != ScalarType.BFloat16.value) throw new IllegalArgumentException("layer norms must be float32 or bfloat16");
        MemorySegment table = arena.allocate(layers.size() * LAYER_WORDS * WORD, 64);
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            long at = i * LAYER_WORDS;
            Tensor[] norms = {l.ln1Weight(), l.ln1Bias(), l.ln2Weight(), l.ln2Bias()};
            for (int j = 0; j < norms.length; j++) {
                if (!rows(norms[j], type, 1, h)) throw new IllegalArgumentException("block " + i + ": a layer norm parameter is not [" + h + "]");
                address(table, at + LN1_WEIGHT + j, NativeMemory.of(norms[j]));
            }
            RowKernel[] linears = {l.queryKeyValue(), l.dense(), l.denseHTo4h(), l.dense4hToH()};
            long[][] shapes = {{h, 3 * h}, {h, h}, {h, 4 * h}, {4 * h, h}};
            for (int j = 0; j < linears.length; j++) {
                if (linears[j].inFeatures() != shapes[j][0] || linears[j].outFeatures() != shapes[j][1]) {
                    throw new IllegalArgumentException("block " + i + ": linear " + j + " is " + linears[j].inFeatures() + " → "
                            + linears[j].outFeatures() + ", not " + shapes[j][0] + " → " + shapes[j][1]);
                }
                linear(table, at + LINEARS + j * LINEAR_WORDS, linears[j]);
            }
        }
        boolean bf16 = type == ScalarType.BFloat16.value;
        if (head == null) return new Table(table, layers.size(), h, bf16, MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL, 0);
        if (!rows(head.lnfWeight(), type, 1, h) || !rows(head.lnfBias(), type, 1, h)) throw new IllegalArgumentException("an ln_f parameter is not [" + h + "]");
        if (head.lmHead().inFeatures() != h) throw new IllegalArgumentException("the lm_head takes " + head.lmHead().inFeatures() + ", not " + h);
        MemorySegment lmHead = arena.allocate(LINEAR_WORDS * WORD, 64);
        linear(lmHead, 0, head.lmHead());
        return new Table(table, layers.size(), h, bf16, lmHead, NativeMemory.of(head.lnfWeight()), NativeMemory.of(head.lnfBias()),
                head.lmHead().outFeatures());
    }

    /**
     * Runs the blocks of {@code table} over {@code hidden} [rows, H] in place (the step's input,
     * then its output): each block's key and value cache buffers ({@code keysAndValues}, [rows · heads,
     * head_dim, capacity] and [rows · heads, capacity, head_dim], position {@code past} written), the
     * step's ALiBi bias and mask (as {@link DecodeAttention#forward} takes them), and six scratch
     * tensors H, 3H, H, H, H and 4H wide ({@link #scratch}; the first and fifth hold the layer norms'
     * output, a copy for each thread). Every tensor is checked before its address goes to C.
     */
    public static void run(Table table, Shape shape, Tensor hidden, List<Tensor[]> keysAndValues, Tensor alibi,
                           Tensor masked, Tensor[] scratch) {
        String misfit = misfit(table, shape.rows(), shape.heads(), shape.headDim(), shape.capacity(), keysAndValues, scratch);
        if (misfit != null) throw new IllegalArgumentException("bt_decode_blocks: " + misfit);
        try (Prepared prepared = new Prepared(table, shape.rows(), shape.heads(), shape.headDim(), shape.capacity(), keysAndValues, scratch)) {
            misfit = misfit(prepared, shape, hidden, alibi, masked);
            if (misfit != null) throw new IllegalArgumentException("bt_decode_blocks: " + misfit);
            launch(prepared, shape, hidden, alibi, masked, false);
        }
    }

    /**
     * What stays the same from one decode step to the next while the KV cache keeps its buffers:
     * the blocks' table with the buffers' addresses written in, and the scratch — both checked once,
     * when prepared. Owns its copy of the table, not the tensors (the cache's and the caller's).
     */
    public static final class Prepared implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        private final Table table;
        private final MemorySegment layers;
        private final long rows, heads, headDim, capacity;
        private final MemorySegment[] scratch;
        private MemorySegment logits;               // [rows, V] in the compute dtype, made by the first step that goes on to the argmax
        private final int threads;
        private MemorySegment step, claims, picks;  // the step struct, its claim slots and the head's picks, made by the first step
        private Shape written;                      // the shape whose words the step struct holds

        private Prepared(Table table, long rows, long heads, long headDim, long capacity, List<Tensor[]> keysAndValues, Tensor[] scratch) {
            this.table = table;
            this.rows = rows;
            this.heads = heads;
            this.headDim = headDim;
            this.capacity = capacity;
            this.layers = arena.allocate(table.segment().byteSize(), 64).copyFrom(table.segment());
            for (int i = 0; i < keysAndValues.size(); i++) {
                address(layers, i * LAYER_WORDS + KEYS, NativeMemory.of(keysAndValues.get(i)[0]));
                address(layers, i * LAYER_WORDS + VALUES, NativeMemory.of(keysAndValues.get(i)[1]));
            }
            this.scratch = new MemorySegment[scratch.length];
            for (int i = 0; i < scratch.length; i++) this.scratch[i] = NativeMemory.of(scratch[i]);
            this.threads = Math.min(SerialOps.kernelThreads(), copies(scratch, rows));
        }

        /** The head's logits scratch (a prepared step is run by one thread at a time; steps that stop at the blocks never make it). */
        private MemorySegment logits() {
            if (logits == null) logits = arena.allocate(rows * table.vocabulary() * (table.bf16() ? 2 : 4), 64);
            return logits;
        }

        /**
         * The step struct for a step of {@code shape} over these addresses: the words that stay the
         * same from step to step written when the first step (or a shape with another norm) came,
         * the position and the step's memory each time, the threads' meeting words and every claim
         * slot zeroed — no chunk of any linear (the head's after the blocks') or attention claimed
         * yet. A decode step's Java runs cold, after the weights have passed through the caches,
         * at tens of microseconds a piece, so the words once written stay.
         */
        private MemorySegment step(Shape shape, MemorySegment hidden, MemorySegment alibi, MemorySegment masked, boolean head) {
            if (step == null) {
                step = arena.allocate(STEP_WORDS * WORD, 64);
                claims = arena.allocate((table.layers() * 5L + 1) * SerialOps.kernelThreads() * CLAIM_WORDS * WORD, 64);
                picks = arena.allocate(ValueLayout.JAVA_LONG, rows);
            }
            if (written == null || written.residualFromLayernorm() != shape.residualFromLayernorm() || written.eps() != shape.eps()) {
                long[] numbers = {table.layers(), rows, table.hidden(), heads, headDim, 0, capacity, table.bf16() ? 1 : 0,
                        shape.residualFromLayernorm() ? 1 : 0, attentionParts(rows, heads), RowSplit.MIN_WEIGHT_ROWS_PER_THREAD};
                for (int i = 0; i < numbers.length; i++) step.setAtIndex(ValueLayout.JAVA_LONG, i, numbers[i]);
                step.setAtIndex(ValueLayout.JAVA_DOUBLE, EPS, shape.eps());
                step.setAtIndex(ValueLayout.JAVA_DOUBLE, ALPHA, 1.0 / Math.sqrt(headDim));
                address(step, LAYER, layers);
                address(step, ATTENTION, ATTENTION_KERNEL);
                for (int i = 0; i < scratch.length; i++) address(step, SCRATCH + i, scratch[i]);
                address(step, CLAIMS, claims);
                address(step, LNF_WEIGHT, table.lnfWeight());
                address(step, LNF_BIAS, table.lnfBias());
                written = shape;
            }
            step.setAtIndex(ValueLayout.JAVA_LONG, PAST, shape.past());
            address(step, HIDDEN_STATE, hidden);
            address(step, ALIBI, alibi);
            address(step, MASKED, masked);
            address(step, HEAD, head ? table.head() : MemorySegment.NULL);
            address(step, LOGITS, head ? logits() : MemorySegment.NULL);
            address(step, PICKS, head ? picks : MemorySegment.NULL);
            step.asSlice(THREADS * WORD, (ABANDONED - THREADS + 1) * WORD).fill((byte) 0);
            claims.fill((byte) 0);
            if (head) picks.fill((byte) 0);                                                  // below every candidate
            return step;
        }

        /** Positions the prepared cache buffers hold. */
        public long capacity() { return capacity; }

        /** Rows of the batch the scratch and buffers were prepared for. */
        public long rows() { return rows; }

        /** Whether the blocks compute in bfloat16 (else float32). */
        public boolean bf16() { return table.bf16(); }

        /** Whether its steps can go on to each row's argmax. */
        public boolean hasHead() { return table.hasHead(); }

        @Override
        public void close() { arena.close(); }
    }

    /**
     * {@code table} with these cache buffers and scratch (as {@link #run} takes them) for steps of
     * {@code rows} rows, or null where they do not fit it.
     */
    public static Prepared prepareIfFits(Table table, long rows, long heads, long headDim, long capacity, List<Tensor[]> keysAndValues,
                                         Tensor[] scratch) {
        if (misfit(table, rows, heads, headDim, capacity, keysAndValues, scratch) != null) return null;
        return new Prepared(table, rows, heads, headDim, capacity, keysAndValues, scratch);
    }

    /** {@link #run} over what {@code prepared} holds; false, nothing written, where this step's tensors do not fit it (the caller takes another path). */
    public static boolean runIfFits(Prepared prepared, Shape shape, Tensor hidden, Tensor alibi, Tensor masked) {
        if (misfit(prepared, shape, hidden, alibi, masked) != null) return false;
        launch(prepared, shape, hidden, alibi, masked, false);
        return true;
    }

    /**
     * {@link #runIfFits}, then ln_f, the lm_head and each row's argmax with torch.argmax's rules (as
     * {@link RowsArgmax.Picks} merges them): the rows' greedy next tokens; null, nothing written,
     * where the step does not fit or the table has no head. {@code hidden} holds the last block's
     * output afterwards, as after {@link #runIfFits}.
     */
    public static long[] argmaxIfFits(Prepared prepared, Shape shape, Tensor hidden, Tensor alibi, Tensor masked) {
        if (!prepared.table.hasHead() || misfit(prepared, shape, hidden, alibi, masked) != null) return null;
        return launch(prepared, shape, hidden, alibi, masked, true);
    }

    /**
     * {@link #argmaxIfFits} over native memory a caller keeps from step to step: {@code hidden} [rows,
     * H] in the compute dtype, the ALiBi bias [rows · heads, past + 1] in the compute dtype and the
     * mask [rows, past + 1] one byte a position (1: masked), as {@link #run} takes their tensors.
     * Throws, nothing written, where the shape or a segment's size does not fit {@code prepared}.
     */
    public static long[] argmax(Prepared prepared, Shape shape, MemorySegment hidden, MemorySegment alibi, MemorySegment masked) {
        String misfit = prepared.table.hasHead() ? misfit(prepared, shape) : "a table without a head";
        long element = prepared.table.bf16() ? 2 : 4;
        long positions = shape.past() + 1;
        if (misfit == null && hidden.byteSize() < shape.rows() * shape.hidden() * element) misfit = "hidden holds " + hidden.byteSize() + " bytes";
        if (misfit == null && alibi.byteSize() < shape.rows() * shape.heads() * positions * element) misfit = "ALiBi holds " + alibi.byteSize() + " bytes";
        if (misfit == null && masked.byteSize() < shape.rows() * positions) misfit = "the mask holds " + masked.byteSize() + " bytes";
        if (misfit != null) throw new IllegalArgumentException("bt_decode_blocks: " + misfit);
        return launch(prepared, shape, hidden, alibi, masked, true);
    }

    /**
     * The step's scratch for {@code rows} rows of width {@code h} in the compute dtype of {@code options}:
     * the normed input (a copy for each of the kernels' threads: each normalizes every row itself
     * rather than meet the others at a barrier after it), QKV, the merged heads, attention's output,
     * the normed second input (copies again) and the MLP's 4H.
     */
    public static Tensor[] scratch(long rows, long h, TensorOptions options) {
        long[] widths = widths(h);
        Tensor[] scratch = new Tensor[widths.length];
        for (int i = 0; i < widths.length; i++) {
            long all = copied(i) ? SerialOps.kernelThreads() * rows : rows;
            scratch[i] = torch.empty(new long[]{all, widths[i]}, options, new MemoryFormatOptional());
        }
        return scratch;
    }

    /** {@code scratch} with the layer norms' outputs cut to one thread's copy of {@code rows} rows (what each linear reads). */
    public static Tensor[] oneThreadsScratch(Tensor[] scratch, long rows) {
        Tensor[] one = scratch.clone();
        for (int i = 0; i < one.length; i++) if (copied(i)) one[i] = scratch[i].narrow(0, 0, rows);
        return one;
    }

    /** Widths of the six scratch tensors: the normed input, QKV, the merged heads, attention's output, the normed second input, the MLP's 4H. */
    private static long[] widths(long h) {
        return new long[]{h, 3 * h, h, h, h, 4 * h};
    }

    /** Whether scratch tensor {@code i} holds a copy for each thread (the layer norms' outputs). */
    private static boolean copied(int i) {
        return i == 0 || i == 4;
    }

    /** Threads the layer norms' copies in {@code scratch} leave room for. */
    private static int copies(Tensor[] scratch, long rows) {
        long fewest = Long.MAX_VALUE;
        for (int i = 0; i < scratch.length; i++) if (copied(i)) fewest = Math.min(fewest, scratch[i].size(0) / rows);
        return (int) fewest;
    }

    /*
     * Every (row, head) pair's attention split over the threads, however little work it is: here a
     * split costs no hand-off (the threads meet at the barrier after it anyway), where DecodeAttention's
     * own threshold weighs one.
     */
    private static long attentionParts(long rows, long heads) {
        long pairs = rows * heads;
        return RowSplit.parts(pairs, pairs);
    }

    /** Runs the step over the tensors' memory; with {@code head}, on to the argmax: the picks, else null. */
    private static long[] launch(Prepared prepared, Shape shape, Tensor hidden, Tensor alibi, Tensor masked, boolean head) {
        return launch(prepared, shape, NativeMemory.of(hidden), NativeMemory.of(alibi), NativeMemory.of(masked), head);
    }

    private static long[] launch(Prepared prepared, Shape shape, MemorySegment hidden, MemorySegment alibi, MemorySegment masked, boolean head) {
        int status = together(prepared.step(shape, hidden, alibi, masked, head), prepared.threads);
        if (status == -1) throw new OutOfMemoryError("bt_decode_blocks: a kernel could not allocate its scratch rows");
        if (status != 0) throw new IllegalStateException("bt_decode_blocks failed with status " + status);
        return head ? RowsArgmax.indices(prepared.picks, shape.rows()) : null;
    }

    /** The first of a step's shape, hidden rows, ALiBi and mask that does not fit {@code prepared}, named; null when all fit. */
    private static String misfit(Prepared prepared, Shape shape, Tensor hidden, Tensor alibi, Tensor masked) {
        String misfit = misfit(prepared, shape);
        if (misfit != null) return misfit;
        long rows = shape.rows();
        long h = prepared.table.hidden();
        int type = prepared.table.bf16() ? ScalarType.BFloat16.value : ScalarType.Float.value;
        long positions = shape.past() + 1;
        if (!rows(hidden, type, rows, h)) return "hidden must be [" + rows + ", " + h + "]";
        if (alibi.numel() != rows * shape.heads() * positions || !plain(alibi, type)) return "ALiBi must be [" + rows * shape.heads() + ", 1, " + positions + "]";
        if (masked.numel() != rows * positions || !plain(masked, ScalarType.Bool.value)) return "the mask must be [" + rows + ", 1, 1, " + positions + "] bool";
        return null;
    }

    /** The step's shape against what {@code prepared} holds, or null when it fits. */
    private static String misfit(Prepared prepared, Shape shape) {
        Table table = prepared.table;
        if (shape.bf16() != table.bf16() || shape.hidden() != table.hidden() || shape.rows() != prepared.rows || shape.heads() != prepared.heads
                || shape.headDim() != prepared.headDim || shape.capacity() != prepared.capacity || shape.past() < 0
                || shape.past() + 1 > shape.capacity()) return "the step's shape " + shape;
        return null;
    }

    /** The first of the cache buffers and scratch {@link #run} hands to C that does not fit the table and the shape, named; null when all fit. */
    private static String misfit(Table table, long rows, long heads, long headDim, long capacity, List<Tensor[]> keysAndValues, Tensor[] scratch) {
        long h = table.hidden();
        int type = table.bf16() ? ScalarType.BFloat16.value : ScalarType.Float.value;
        if (heads * headDim != h || rows < 1 || rows > MAX_ROWS || capacity < 1) {
            return "the step's shape: " + rows + " rows, " + heads + " heads of " + headDim + ", capacity " + capacity;
        }
        long[] widths = widths(h);
        if (scratch.length != widths.length) return "six scratch tensors";
        for (int i = 0; i < widths.length; i++) {
            long all = copied(i) ? scratch[i].numel() / h : rows;
            if (!rows(scratch[i], type, all, widths[i]) || all < rows || all % rows != 0) {
                return "scratch " + i + " must be [" + (copied(i) ? "k · " : "") + rows + ", " + widths[i] + "]";
            }
        }
        if (keysAndValues.size() != table.layers()) return "one key and value buffer per block";
        long pairs = rows * heads;
        for (Tensor[] kv : keysAndValues) {
            if (kv.length != 2 || !buffer(kv[0], type, pairs, headDim, capacity) || !buffer(kv[1], type, pairs, capacity, headDim)) {
                return "cache buffers must be [" + pairs + ", " + headDim + ", " + capacity + "] and [" + pairs + ", "
                        + capacity + ", " + headDim + "]";
            }
        }
        return null;
    }

    private static boolean buffer(Tensor t, int type, long d0, long d1, long d2) {
        return plain(t, type) && t.dim() == 3 && t.size(0) == d0 && t.size(1) == d1 && t.size(2) == d2;
    }

    private static boolean rows(Tensor t, int type, long rows, long width) {
        return plain(t, type) && t.numel() == rows * width && t.size(-1) == width;
    }

    private static boolean plain(Tensor t, int type) {
        return t.scalar_type().value == type && t.is_contiguous() && t.is_cpu() && !t.requires_grad();
    }

    /**
     * Thread 0 on the caller, the others on {@link KernelThreads}' helpers, as many as take a part:
     * the count is written before any thread starts (they wait for READY), so a busy helper only
     * means fewer threads, never a barrier waiting for one that will not come.
     */
    private static int together(MemorySegment confined, int threads) {
        // The helpers pass the step's bare address: the arena's confinement is the caller's, who outlives their parts.
        MemorySegment step = MemorySegment.ofAddress(confined.address()).reinterpret(confined.byteSize());
        List<KernelThreads.Part> handed = new ArrayList<>();
        int[] helperStatus = new int[threads];
        for (int t = 1; t < helperStatus.length; t++) {
            final int tid = t;
            KernelThreads.Part part = new KernelThreads.Part((from, count) -> helperStatus[tid] = call(step, tid), 0, 1);
            if (!KernelThreads.offer(t - 1, part)) break;
            handed.add(part);
        }
        step.setAtIndex(ValueLayout.JAVA_LONG, THREADS, 1 + handed.size());
        RELEASE_LONG.setRelease(step, READY * WORD, 1L);
        int status;
        try {
            status = call(step, 0);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_decode_blocks failed", t);
        } finally {
            Throwable error = null;
            for (KernelThreads.Part part : handed) {
                Throwable failed = part.await();         // every part, so no helper still reads the step when this returns
                if (error == null) error = failed;
            }
            if (error != null) throw new IllegalStateException("FFM call to bt_decode_blocks failed", error);
        }
        for (int s : helperStatus) if (status == 0) status = s;
        return status;
    }

    /** Thread {@code tid}'s share; a thread that fails to enter abandons the step, so no other waits for it at a barrier. */
    private static int call(MemorySegment step, long tid) throws Throwable {
        try {
            return (int) KERNEL.invokeExact(step, tid);
        } catch (Throwable t) {
            RELEASE_LONG.setRelease(step, ABANDONED * WORD, 1L);
            throw t;
        }
    }

    private static void linear(MemorySegment table, long at, RowKernel k) {
        table.setAtIndex(ValueLayout.JAVA_LONG, at + CALL, k.call.ordinal());
        address(table, at + FUNCTION, k.function);
        address(table, at + WEIGHT, k.weight);
        address(table, at + SCALES, k.scales);
        address(table, at + BIAS, k.bias);
        table.setAtIndex(ValueLayout.JAVA_LONG, at + N, k.n);
        table.setAtIndex(ValueLayout.JAVA_LONG, at + K, k.k);
        table.setAtIndex(ValueLayout.JAVA_LONG, at + WEIGHT_BYTES, k.weightBytes);
        table.setAtIndex(ValueLayout.JAVA_DOUBLE, at + THRESHOLD, k.threshold);
    }

    private static void address(MemorySegment s, long word, MemorySegment value) {
        s.setAtIndex(ValueLayout.ADDRESS, word, value);
    }

    /** The kernel, checked against the C structs' sizes this build compiled (a mismatch is a build error, not a fallback). */
    private static MethodHandle bind() {
        if (!NativeKernels.available()) return null;
        try {
            long sizes = (long) NativeKernels.bind("bt_decode_blocks_sizes", FunctionDescriptor.of(ValueLayout.JAVA_LONG)).invokeExact();
            long expected = CLAIM_WORDS << 48 | LINEAR_WORDS * WORD << 32 | LAYER_WORDS * WORD << 16 | STEP_WORDS * WORD;
            if (sizes != expected) throw new IllegalStateException("native/decode_blocks.c's structs are " + Long.toHexString(sizes)
                    + ", DecodeBlocksKernel writes " + Long.toHexString(expected));
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_decode_blocks_sizes failed", t);
        }
        return NativeKernels.bind("bt_decode_blocks", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }
}
