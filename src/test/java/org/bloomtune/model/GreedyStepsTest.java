package org.bloomtune.model;

import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.HeapOutsideTheJvm;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link GreedySteps} — each step's input gathered, normalized and given its ALiBi and mask column
 * in native memory — against the same tokens fed through tensors: libtorch's embedding and layer
 * norm, the model's attention context, the blocks, then ln_f, the lm_head and torch's argmax. Each
 * step's last block output agrees and the picks are the same, step after step, for three
 * left-padded rows and for one, in every word embedding layout that has a native gather (float32
 * and bfloat16 row-major, bfloat16 and float32 panels, weight-only int8 and LLM.int8 panels in both
 * compute dtypes); no session where the embedding is row-major int8. The prompts' padding puts the
 * rows' ALiBi positions apart, so a bias column written at the wrong position or row moves the
 * output (GreedyParityTest holds the session to HF's generate, through {@code Generator}).
 */
class GreedyStepsTest {
    static final long[][] PROMPTS = NextTokenArgmaxTest.PROMPTS;
    static final int STEPS = 12;

    @TempDir
    static Path dir;
    static Path checkpoint;

    @BeforeAll
    static void writeCheckpoint() {
        checkpoint = dir.resolve("bloom-256");
        // Weights drawn wide (HF's reference checkpoints' 0.2), so that picks follow the attention's bias closely.
        RandomCheckpoint.write(BloomConfig.of(1024, 256, 4, 2), checkpoint, DType.F32, 256, 0.2);
    }

    record Layout(DType dtype, Int8Mode int8, boolean forInference) {
        /**
         * How far a step's last block output may lie from the tensor path's, relative to its largest
         * value: the embeddings' layer norm rounds differently in the last bits (the float sums' order;
         * up to 1.2e-6 seen in float32, none in bfloat16), which the blocks carry on — a bfloat16
         * step's one ulp more.
         */
        double tolerance() {
            return dtype == DType.F32 ? 1e-5 : 1.0 / 128;
        }

        LoadOptions options() {
            LoadOptions options = LoadOptions.defaults().withDtype(dtype);
            if (forInference) options = options.forInference();
            return int8 == Int8Mode.NONE ? options : options.withInt8(Int8Options.of(int8));
        }
    }

    @Test
    void eachStepMatchesTheTensorPathFedTheSameTokens() {
        List<Layout> layouts = List.of(new Layout(DType.F32, Int8Mode.NONE, false), new Layout(DType.BF16, Int8Mode.NONE, false),
                new Layout(DType.BF16, Int8Mode.NONE, true), new Layout(DType.F32, Int8Mode.NONE, true),
                new Layout(DType.BF16, Int8Mode.WEIGHT_ONLY, true), new Layout(DType.F32, Int8Mode.WEIGHT_ONLY, true),
                new Layout(DType.F32, Int8Mode.LLM_INT8, true), new Layout(DType.BF16, Int8Mode.LLM_INT8, true),
                new Layout(DType.F32, Int8Mode.LLM_INT8, false));
        for (Layout layout : layouts) {
            try (BloomModel model = BloomModel.load(checkpoint, layout.options())) {
                for (int rows : new int[]{3, 1}) {
                    String what = layout + " rows " + rows;
                    boolean gathers = model.wordEmbeddings().rowGather() != null;
                    if (nativeHere(model, rows)) assertEquals(layout.forInference() || layout.int8() == Int8Mode.NONE, gathers, what + ": a native gather");
                    decodeBothWays(model, rows, gathers && nativeHere(model, rows), layout.tolerance(), what);
                }
            }
        }
    }

    @Test
    void aCacheWithoutRoomForTheStepsIsGivenRoomAsTheyGo() {
        try (BloomModel model = BloomModel.load(checkpoint, new Layout(DType.BF16, Int8Mode.WEIGHT_ONLY, true).options())) {
            if (!nativeHere(model, 3)) return;
            LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, 3);
            try (KvCache byTensors = new KvCache(model.config().numLayers());
                 KvCache kept = new KvCache(model.config().numLayers(), prompts.width())) {
                long[] next = prefill(model, prompts, 3, byTensors);
                assertArrayEquals(next, prefill(model, prompts, 3, kept));
                try (GreedySteps steps = model.greedySteps(kept, prompts.mask(), 3, prompts.width(), prompts.width() + 40)) {
                    assertNotNull(steps);
                    long[] mask = prompts.mask();
                    for (int s = 0; s < 40; s++) {
                        mask = LeftPaddedPrompts.grown(mask, 3, prompts.width() + s + 1);
                        long[] expected = step(model, next, mask, 3, byTensors);
                        assertArrayEquals(expected, steps.next(next), "step " + s);
                        next = expected;
                    }
                    assertEquals(prompts.width() + 40, kept.length());
                    assertThrows(IllegalStateException.class, () -> steps.next(new long[]{1, 2, 3}), "a step past the positions it was opened for");
                }
            }
        }
    }

    @Test
    void aTokenOutsideTheVocabularyIsRefusedByNameBeforeAnythingRuns() {
        try (BloomModel model = BloomModel.load(checkpoint, new Layout(DType.F32, Int8Mode.NONE, false).options())) {
            if (!nativeHere(model, 1)) return;
            LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, 1);
            try (KvCache cache = new KvCache(model.config().numLayers(), prompts.width() + 4)) {
                prefill(model, prompts, 1, cache);
                try (GreedySteps steps = model.greedySteps(cache, prompts.mask(), 1, prompts.width(), prompts.width() + 4)) {
                    assertNotNull(steps);
                    for (long bad : new long[]{1024, -1}) {
                        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> steps.next(new long[]{bad}));
                        assertTrue(e.getMessage().contains("input_ids") && e.getMessage().contains(Long.toString(bad)), e.getMessage());
                    }
                    assertThrows(IllegalArgumentException.class, () -> steps.next(new long[]{1, 2}));
                    assertEquals(prompts.width(), cache.length(), "the cache after refused steps");
                    steps.next(new long[]{7});
                    assertEquals(prompts.width() + 1, cache.length());
                }
                assertNull(model.greedySteps(cache, new long[]{1, 2, 1}, 1, 3, 20), "a packed row's mask has no session");
            }
        }
    }

    @Test
    void sessionsOfManyStepsLeaveNoTensorOrHeapBehind() {
        assertTrue(CpuCachingAllocator.installed(), CpuCachingAllocator.inUse());
        try (BloomModel model = BloomModel.load(checkpoint, new Layout(DType.BF16, Int8Mode.LLM_INT8, true).options())) {
            if (!nativeHere(model, 3)) return;
            for (int i = 0; i < 4; i++) session(model);       // the JIT's and the first sessions' one-time memory first
            long[] tensors = new long[8];
            long[] heap = new long[8];
            for (int round = 0; round < tensors.length; round++) {
                for (int i = 0; i < 4; i++) session(model);
                ProcessMemory.trim();
                tensors[round] = CpuCachingAllocator.stats().inUse();
                heap[round] = HeapOutsideTheJvm.bytes();
            }
            long firstLow = Arrays.stream(tensors, 0, 4).min().orElseThrow();
            long lastHigh = Arrays.stream(tensors, 4, 8).max().orElseThrow();
            assertTrue(lastHigh <= firstLow, "tensor bytes in use after each round: " + Arrays.toString(tensors));
            // As DecodeBlocksTest's check: a leak raises the floor of every window of two rounds (800 steps).
            assertFalse(HeapOutsideTheJvm.roseInEveryWindow(heap, 128L << 10), "the native heap outside the JVM rose in every window of 800 steps: "
                    + Arrays.toString(heap));
        }
    }

    /** A prefill of three rows and a session of 100 steps fed its own picks. */
    private static void session(BloomModel model) {
        LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, 3);
        try (KvCache cache = new KvCache(model.config().numLayers(), prompts.width() + 100)) {
            long[] next = prefill(model, prompts, 3, cache);
            try (GreedySteps steps = model.greedySteps(cache, prompts.mask(), 3, prompts.width(), prompts.width() + 100)) {
                for (int s = 0; s < 100; s++) next = steps.next(next);
            }
        }
    }

    /** Whether this CPU has the native decode step and its head for the model at these rows (where it has not, no session opens: the other tests check). */
    private static boolean nativeHere(BloomModel model, int rows) {
        return DecodeBlocksTest.nativeRuns(model, rows) && NextTokenArgmaxTest.nativeHeadRuns(model, rows);
    }

    /**
     * Two caches after the same prefill: one fed through tensors — libtorch's embedding and layer
     * norm, the blocks, then ln_f, the lm_head and torch's argmax — the other by a session (none
     * where {@code nativeSession} is false). Each step's last block output must agree within
     * {@code tolerance} of its largest value and the picks exactly.
     */
    private static void decodeBothWays(BloomModel model, int rows, boolean nativeSession, double tolerance, String what) {
        LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, rows);
        try (KvCache byTensors = new KvCache(model.config().numLayers(), prompts.width() + STEPS);
             KvCache kept = new KvCache(model.config().numLayers(), prompts.width() + STEPS)) {
            long[] next = prefill(model, prompts, rows, byTensors);
            assertArrayEquals(next, prefill(model, prompts, rows, kept), what + ": prefill");
            try (GreedySteps steps = model.greedySteps(kept, prompts.mask(), rows, prompts.width(), prompts.width() + STEPS)) {
                assertEquals(nativeSession, steps != null, what + ": a session");
                if (steps == null) return;
                long[] mask = prompts.mask();
                for (int s = 0; s < STEPS; s++) {
                    mask = LeftPaddedPrompts.grown(mask, rows, prompts.width() + s + 1);
                    float[] hidden = new float[0];
                    long[] expected;
                    try (PointerScope scope = new PointerScope();
                         Tensor in = Tensors.fromLongs(next, rows, 1); Tensor m = Tensors.fromLongs(mask, rows, mask.length / rows)) {
                        Tensor last = model.lastHidden(model.prepare(CausalLmInput.ids(in).mask(m), byTensors.length()), 1, byTensors);
                        byTensors.advance(1);
                        hidden = Tensors.toFloats(last);
                        expected = Tensors.toLongs(model.head(last.select(1, 0)).argmax(new LongOptional(-1), false));
                    }
                    long[] got = steps.next(next);
                    float[] gotHidden = steps.lastHidden();
                    double err = 0, largest = 0;
                    for (int i = 0; i < hidden.length; i++) {
                        err = Math.max(err, Math.abs(hidden[i] - gotHidden[i]));
                        largest = Math.max(largest, Math.abs(hidden[i]));
                    }
                    assertTrue(err <= tolerance * largest, what + " step " + s + ": the last block's output " + err + " from the tensors' (largest " + largest + ")");
                    assertArrayEquals(expected, got, what + " step " + s);
                    next = expected;
                }
            }
        }
    }

    private static long[] prefill(BloomModel model, LeftPaddedPrompts prompts, int rows, KvCache cache) {
        return step(model, prompts.ids(), prompts.mask(), rows, cache);
    }

    private static long[] step(BloomModel model, long[] ids, long[] mask, int rows, KvCache cache) {
        try (Tensor in = Tensors.fromLongs(ids, rows, ids.length / rows); Tensor m = Tensors.fromLongs(mask, rows, mask.length / rows)) {
            return model.nextTokenArgmax(CausalLmInput.ids(in).mask(m), cache);
        }
    }
}
