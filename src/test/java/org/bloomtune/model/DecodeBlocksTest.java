package org.bloomtune.model;

import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.kernels.DecodeBlocksKernel;
import org.bloomtune.kernels.DensePanels;
import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.Int8F32Panels;
import org.bloomtune.kernels.LlmInt8Panels;
import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.HeapOutsideTheJvm;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native decode step ({@link DecodeBlocks}) against the blocks run one by one from Java, on a
 * random checkpoint wide enough that every linear but none of the attention is split over two
 * threads: the same next-token logits step after step (the cache written by each path in turn), for
 * three left-padded rows and for one, in every mode whose row kernels this CPU runs (and twelve rows
 * for the inference-only panels, past the row-major kernels' eight); the same bits on
 * one thread as on two; the same bits when the cache grows or another cache's steps come between;
 * and no tensor memory or native heap held over fourteen hundred steps, a third of them greedy
 * steps through the native head.
 */
class DecodeBlocksTest {
    /** Three prompts for most checks; twelve where a step of more rows than the row-major kernels take is checked. */
    static final long[][] PROMPTS = {{5, 17, 3, 88, 41}, {64, 2, 71}, {9, 23, 800, 1000}, {7}, {300, 301, 302, 303, 304, 305},
            {44, 45}, {1023, 0, 512}, {8, 8, 8, 8}, {600, 12}, {90, 91, 92, 93, 94}, {250}, {31, 32, 33}};
    static final int STEPS = 6;

    @TempDir
    static Path dir;
    static Path checkpoint;

    @BeforeAll
    static void writeCheckpoint() {
        checkpoint = dir.resolve("bloom-512");
        RandomCheckpoint.write(BloomConfig.of(1024, 512, 8, 2), checkpoint, DType.F32, 512);
    }

    record Mode(DType dtype, Int8Mode int8, double tolerance) {}

    @Test
    void theNativeStepGivesTheLogitsOfTheBlocksRunOneByOne() {
        // Bounds relative to the largest logit: float32 a few units in the last place of it (the layer
        // norm's sums and the GELU's tanh differ in the last bits), bfloat16 a sixteenth of one.
        List<Mode> modes = List.of(new Mode(DType.F32, Int8Mode.NONE, 1e-6), new Mode(DType.BF16, Int8Mode.NONE, 4e-3),
                new Mode(DType.F32, Int8Mode.LLM_INT8, 1e-6), new Mode(DType.BF16, Int8Mode.LLM_INT8, 4e-3),
                new Mode(DType.F32, Int8Mode.WEIGHT_ONLY, 1e-6), new Mode(DType.BF16, Int8Mode.WEIGHT_ONLY, 4e-3));
        for (Mode mode : modes) {
            for (int rows : new int[]{3, 1}) {
                try (BloomModel model = load(mode)) {
                    boolean runs = nativeRuns(model, rows);
                    model.nativeDecodeBlocks(false);
                    List<float[]> blocks = decode(model, rows, null);
                    model.nativeDecodeBlocks(true);
                    long before = model.nativeDecodeSteps();
                    List<float[]> fused = decode(model, rows, blocks);
                    if (runs) assertTrue(model.nativeDecodeSteps() - before == STEPS, mode + " rows " + rows + ": the native step did not run");
                    for (int s = 0; s < STEPS; s++) {
                        double scale = maxAbs(blocks.get(s));
                        double err = maxDiff(fused.get(s), blocks.get(s));
                        assertTrue(err <= mode.tolerance() * scale, mode + " rows " + rows + " step " + s + ": " + err + " of " + scale);
                    }
                }
            }
        }
    }

    /**
     * An inference-only model keeps its blocks' weights and the tied lm_head in panels —
     * bfloat16 or float32 ({@link PanelLinear}, {@link PanelWordEmbedding}), weight-only int8 and LLM.int8
     * ({@link PanelInt8Linear}, {@link PanelInt8WordEmbedding}): the same bytes resident, the word
     * embedding's rows the same bits, and the decode steps' logits those of the row-major layout to
     * bfloat16's bound (the products sum in another order; the weight-only prefill scales each sum
     * where the row-major path multiplies the dequantized weight), natively and from Java; a reverse
     * pass through it is refused with the reason.
     */
    @Test
    void anInferenceOnlyModelDecodesAsTheStoredLayoutDoes() {
        // Both layouts round each logit to bfloat16 after summing in other orders: one unit in the last
        // place of the largest logit apart (2^-7 of it), which 4e-3 did not admit at twelve rows.
        // float32: the same sums in another order, a few units in the last place of the largest logit.
        // LLM.int8: the same arithmetic at a decode step's rows; at a prefill's the outlier columns' sums
        // in another order than the op-by-op addmm's.
        for (Mode mode : List.of(new Mode(DType.BF16, Int8Mode.NONE, 0x1p-7), new Mode(DType.BF16, Int8Mode.WEIGHT_ONLY, 0x1p-7),
                new Mode(DType.F32, Int8Mode.NONE, 1e-5), new Mode(DType.F32, Int8Mode.LLM_INT8, 1e-5),
                new Mode(DType.BF16, Int8Mode.LLM_INT8, 0x1p-7), new Mode(DType.F32, Int8Mode.WEIGHT_ONLY, 1e-5))) {
            boolean panels = switch (mode.int8()) {
                case NONE -> DensePanels.supported(mode.dtype().scalarType());
                case WEIGHT_ONLY -> mode.dtype() == DType.BF16 ? Int8Bf16Panels.supported() : Int8F32Panels.supported();
                case LLM_INT8 -> LlmInt8Panels.supported();
                case DEQUANTIZE -> false;
            };
            for (int rows : new int[]{12, 3, 1}) {              // twelve: a native step of panels past the row-major kernels' eight
                try (BloomModel stored = load(mode); BloomModel packed = load(mode, true)) {
                    Linear qkv = packed.blocks().getFirst().selfAttention().queryKeyValue();
                    assertTrue((qkv instanceof PanelLinear || qkv instanceof PanelInt8Linear) == panels, mode + ": " + qkv.getClass().getSimpleName());
                    WordEmbedding head = packed.wordEmbeddings();
                    assertTrue((head instanceof PanelWordEmbedding || head instanceof PanelInt8WordEmbedding) == panels, mode + ": the lm_head");
                    assertTrue(stored.residentWeightBytes() == packed.residentWeightBytes(), mode + ": resident bytes differ");
                    try (Tensor ids = Tensors.fromLongs(new long[]{0, 31, 32, 1000, 1023, 77}, 2, 3)) {
                        assertTrue(torch.equal(head.lookup(ids), stored.wordEmbeddings().lookup(ids)), mode + ": embedding rows differ");
                        assertTrue(torch.equal(head.rows(30, 40), stored.wordEmbeddings().rows(30, 40)), mode + ": vocabulary block differs");
                    }
                    List<float[]> reference = decode(stored, rows, null);
                    for (boolean nativeStep : new boolean[]{true, false}) {
                        packed.nativeDecodeBlocks(nativeStep);
                        long before = packed.nativeDecodeSteps();
                        List<float[]> got = decode(packed, rows, reference);
                        if (nativeStep && nativeRuns(packed, rows)) assertTrue(packed.nativeDecodeSteps() - before == STEPS, "the native step did not run");
                        for (int s = 0; s < STEPS; s++) {
                            double scale = maxAbs(reference.get(s));
                            double err = maxDiff(got.get(s), reference.get(s));
                            assertTrue(err <= mode.tolerance() * scale, mode + " rows " + rows + " native " + nativeStep + " step " + s + ": " + err + " of " + scale);
                        }
                    }
                    if (panels) {
                        try (Tensor x = torch.ones(1, packed.config().hiddenSize()).to(mode.dtype().scalarType()).requires_grad_(true)) {
                            IllegalStateException e = assertThrows(IllegalStateException.class, () -> qkv.forward(x));
                            assertTrue(e.getMessage().contains("inference only"), e.getMessage());
                        }
                    }
                }
            }
        }
    }

    /**
     * In panels every output sums its pairs in the same order whatever the rows, so an inference-only
     * model (its weights bfloat16, float32 or weight-only int8 with either) gives a prompt's next-token logits the same bits alone as in a batch of three
     * (the row-major kernels read one row and several rows in different orders): a request's tokens
     * do not depend on what it is batched with. (Not so LLM.int8's: its outlier columns are those of the
     * whole batch, as bitsandbytes takes them.)
     */
    @Test
    void anInferenceOnlyRowDecodesTheSameBitsAloneAsInABatch() {
        for (Mode mode : List.of(new Mode(DType.BF16, Int8Mode.NONE, 0), new Mode(DType.BF16, Int8Mode.WEIGHT_ONLY, 0), new Mode(DType.F32, Int8Mode.NONE, 0),
                new Mode(DType.F32, Int8Mode.WEIGHT_ONLY, 0)))
        try (BloomModel packed = load(mode, true)) {
            if (!(packed.blocks().getFirst().selfAttention().queryKeyValue() instanceof PanelLinear
                    || packed.blocks().getFirst().selfAttention().queryKeyValue() instanceof PanelInt8Linear)) continue;  // no panels here: the row-major kernels make no such promise
            for (boolean nativeStep : new boolean[]{true, false}) {
                packed.nativeDecodeBlocks(nativeStep);
                List<float[]> alone = decode(packed, 1, null);
                for (int rows : new int[]{3, 12}) {
                    List<float[]> batched = decode(packed, rows, null);
                    for (int s = 0; s < STEPS; s++) {
                        float[] first = java.util.Arrays.copyOf(batched.get(s), alone.get(s).length);
                        assertArrayEquals(alone.get(s), first, mode + " native " + nativeStep + " step " + s + ": the first row's logits differ in a batch of " + rows);
                    }
                }
            }
        }
    }

    @Test
    void oneThreadGivesTheBitsOfTwo() {
        record Case(Mode mode, boolean forInference) {}
        for (Case c : List.of(new Case(new Mode(DType.BF16, Int8Mode.NONE, 0), false), new Case(new Mode(DType.F32, Int8Mode.LLM_INT8, 0), false),
                new Case(new Mode(DType.F32, Int8Mode.LLM_INT8, 0), true),      // LLM.int8 panels: chunks of shares, x quantized per thread
                new Case(new Mode(DType.BF16, Int8Mode.NONE, 0), true))) {      // bfloat16 panels: one thread's kernel widens x per panel, two widen it once per linear
            Mode mode = c.mode();
            try (BloomModel model = load(mode, c.forInference())) {
                List<float[]> two = decode(model, 3, null);
                int threads = torch.get_num_threads();
                torch.set_num_threads(1);
                List<float[]> one;
                try {
                    one = decode(model, 3, two);
                } finally {
                    torch.set_num_threads(threads);
                }
                for (int s = 0; s < STEPS; s++) assertArrayEquals(two.get(s), one.get(s), c + " step " + s);
            }
        }
    }

    /**
     * The native step keeps its table of cache addresses and its scratch from step to step, and
     * must let them go whenever the cache's buffers change: a generation whose cache has room for two
     * steps only and grows in the middle, and two generations stepped in turn on one model (each step
     * finds the other's cache prepared), give the bits of a generation alone, and the Java path's logits.
     */
    @Test
    void aStepKeptFromStepToStepFollowsItsCacheWhenTheBuffersChange() {
        Mode mode = new Mode(DType.F32, Int8Mode.NONE, 1e-6);
        try (BloomModel model = load(mode)) {
            model.nativeDecodeBlocks(false);
            List<float[]> blocks = decode(model, 3, null);
            model.nativeDecodeBlocks(true);
            List<float[]> alone = decode(model, 3, null);
            long before = model.nativeDecodeSteps();
            try (Decoding growing = new Decoding(model, 3, 2)) {
                for (int s = 0; s < STEPS; s++) assertArrayEquals(alone.get(s), growing.step(null), "step " + s + ": the generation whose cache grows");
            }
            try (Decoding first = new Decoding(model, 3, 0); Decoding second = new Decoding(model, 3, 0)) {
                for (int s = 0; s < STEPS; s++) {
                    assertArrayEquals(alone.get(s), first.step(null), "step " + s + ": the first of two generations in turn");
                    assertArrayEquals(alone.get(s), second.step(null), "step " + s + ": the second of two generations in turn");
                }
            }
            for (int s = 0; s < STEPS; s++) {
                double err = maxDiff(alone.get(s), blocks.get(s));
                assertTrue(err <= mode.tolerance() * maxAbs(blocks.get(s)), "step " + s + ": " + err + " from the blocks run one by one");
            }
            if (nativeRuns(model, 3)) {
                assertTrue(model.nativeDecodeSteps() - before == 3L * STEPS, "native steps: " + (model.nativeDecodeSteps() - before));
            }
        }
    }

    @Test
    void fourteenHundredNativeStepsLeaveNoTensorOrHeapBehind() {
        assertTrue(CpuCachingAllocator.installed(), CpuCachingAllocator.inUse());
        try (BloomModel model = load(new Mode(DType.BF16, Int8Mode.LLM_INT8, 0))) {
            // Two rounds first, unrecorded: the JIT's arenas and the first steps' one-time buffers are
            // glibc heap too, and in a run of many test classes they may still be growing in round one.
            for (int i = 0; i < 20; i++) decodeBoth(model);
            long before = model.nativeDecodeSteps();
            long[] tensors = new long[8];
            long[] heap = new long[8];
            for (int round = 0; round < tensors.length; round++) {
                for (int i = 0; i < 10; i++) decodeBoth(model);
                ProcessMemory.trim();
                tensors[round] = CpuCachingAllocator.stats().inUse();
                heap[round] = HeapOutsideTheJvm.bytes();
            }
            assertTrue(model.nativeDecodeSteps() - before == 30L * STEPS * tensors.length || !nativeRuns(model, 3), "the native step did not run");
            // Tensors other tests left to the collector may be freed meanwhile; a leak would only grow.
            long firstLow = java.util.Arrays.stream(tensors, 0, 4).min().orElseThrow();
            long lastHigh = java.util.Arrays.stream(tensors, 4, 8).max().orElseThrow();
            assertTrue(lastHigh <= firstLow, "tensor bytes in use after each round: " + java.util.Arrays.toString(tensors));
            // The heap outside the JVM: the JVM's own mallocs move the floor by megabytes as its
            // compiler threads take and pool arenas (FINDINGS.md). What is left may still rise once,
            // a library's buffer made on first use; a leak raises the floor of every window of two
            // rounds (360 steps), so only a rise of 128 KiB (a third of a kilobyte a step) in each fails.
            assertFalse(HeapOutsideTheJvm.roseInEveryWindow(heap, 128L << 10), "the native heap outside the JVM rose in every window of 360 steps: "
                    + java.util.Arrays.toString(heap));
        }
    }

    private static void decodeBoth(BloomModel model) {
        decode(model, 3, null);
        decode(model, 1, null);
        greedy(model, 3);
    }

    /** The prefill and {@link #STEPS} greedy steps of the first {@code rows} prompts by {@link BloomModel#nextTokenArgmax} (the native step's head where it runs). */
    private static void greedy(BloomModel model, int rows) {
        LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, rows);
        long[] ids = prompts.ids();
        long[] mask = prompts.mask();
        int keys = prompts.width();
        try (KvCache cache = new KvCache(model.config().numLayers(), keys + STEPS)) {
            for (int s = 0; s <= STEPS; s++) {
                try (Tensor in = Tensors.fromLongs(ids, rows, ids.length / rows); Tensor m = Tensors.fromLongs(mask, rows, keys)) {
                    ids = model.nextTokenArgmax(CausalLmInput.ids(in).mask(m), cache);
                }
                mask = LeftPaddedPrompts.grown(mask, rows, ++keys);
            }
        }
    }

    private static BloomModel load(Mode mode) { return load(mode, false); }

    private static BloomModel load(Mode mode, boolean forInference) {
        LoadOptions options = LoadOptions.defaults().withDtype(mode.dtype());
        if (forInference) options = options.forInference();
        return BloomModel.load(checkpoint, mode.int8() == Int8Mode.NONE ? options : options.withInt8(Int8Options.of(mode.int8())));
    }

    /** True when this CPU has every kernel the native step needs for the model at these rows. */
    static boolean nativeRuns(BloomModel model, int rows) {
        if (!DecodeBlocksKernel.available()) return false;
        long h = model.config().hiddenSize();
        try (Tensor x = torch.zeros(rows, h).to(model.dtype().scalarType()); Tensor wide = torch.zeros(rows, 4 * h).to(model.dtype().scalarType())) {
            BloomBlock b = model.blocks().getFirst();
            return b.selfAttention().queryKeyValue().rowKernel(x) != null && b.selfAttention().dense().rowKernel(x) != null
                    && b.mlp().denseHTo4h().rowKernel(x) != null && b.mlp().dense4hToH().rowKernel(wide) != null;
        }
    }

    /**
     * The prefill and {@link #STEPS} decode steps of the first {@code rows} prompts, left-padded; each
     * step feeds the tokens {@code chosen} picked (greedy over its logits), or its own picks when null.
     * Returns each decode step's logits [rows, V].
     */
    private static List<float[]> decode(BloomModel model, int rows, List<float[]> chosen) {
        List<float[]> out = new ArrayList<>();
        try (Decoding d = new Decoding(model, rows, 0)) {
            for (int s = 0; s < STEPS; s++) out.add(d.step(s == 0 || chosen == null ? null : chosen.get(s - 1)));
        }
        return out;
    }

    /**
     * One generation over the first {@code rows} prompts, a step at a time: the prefill at once, then
     * each {@link #step} feeds the greedy tokens of the given logits (or of its last ones). Its cache
     * is sized for {@link #STEPS} steps, or for the prompt and {@code room} positions when room > 0.
     */
    private static final class Decoding implements AutoCloseable {
        private final BloomModel model;
        private final int rows;
        private final KvCache cache;
        private long[] mask;
        private int keys;
        private float[] last;

        Decoding(BloomModel model, int rows, int room) {
            this.model = model;
            this.rows = rows;
            LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, rows);
            int width = prompts.width();
            long[] ids = prompts.ids();
            mask = prompts.mask();
            keys = width;
            cache = new KvCache(model.config().numLayers(), width + (room > 0 ? room : STEPS));
            last = nextTokenLogits(model, ids, mask, rows, width, cache);
        }

        /** The next step's logits [rows, V], its tokens the greedy picks of {@code chosen} (of this generation's last logits when null). */
        float[] step(float[] chosen) {
            long[] next = argmax(chosen == null ? last : chosen, rows);
            keys++;
            mask = LeftPaddedPrompts.grown(mask, rows, keys);
            last = nextTokenLogits(model, next, mask, rows, keys, cache);
            return last;
        }

        @Override
        public void close() { cache.close(); }
    }

    /** The model's next-token logits for {@code ids} [rows, ids / rows] under {@code mask} [rows, keys], every handle closed. */
    private static float[] nextTokenLogits(BloomModel model, long[] ids, long[] mask, int rows, int keys, KvCache cache) {
        try (Tensor in = Tensors.fromLongs(ids, rows, ids.length / rows); Tensor m = Tensors.fromLongs(mask, rows, keys);
             Tensor logits = model.nextTokenLogits(CausalLmInput.ids(in).mask(m), cache)) {
            return Tensors.toFloats(logits);
        }
    }

    private static long[] argmax(float[] logits, int rows) {
        int vocab = logits.length / rows;
        long[] best = new long[rows];
        for (int r = 0; r < rows; r++)
            for (int v = 1; v < vocab; v++) if (logits[r * vocab + v] > logits[r * vocab + (int) best[r]]) best[r] = v;
        return best;
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
