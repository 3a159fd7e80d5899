package org.bloomtune.model;

import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link BloomModel#nextTokenArgmax} — the argmax merged by the lm_head's threads as they write the
 * logits — against torch's argmax of {@link BloomModel#nextTokenLogits}'s logits, step after step of
 * a greedy decode of three left-padded rows and of one, for every lm_head layout: float32 and
 * bfloat16 row-major, bfloat16 and weight-only int8 panels (inference-only), and the row-major int8
 * weight in both int8 modes and both compute dtypes. Where this CPU has the native decode step and
 * the lm_head's row kernel, the merged argmax is the native step's own (ln_f, the lm_head and the
 * merge after the blocks in one call), so the check also holds it to the Java path's logits.
 */
class NextTokenArgmaxTest {
    static final long[][] PROMPTS = {{5, 17, 3, 88, 41}, {64, 2, 71}, {9, 23, 800, 1000}};
    static final int STEPS = 5;

    @TempDir
    static Path dir;
    static Path checkpoint;

    @BeforeAll
    static void writeCheckpoint() {
        checkpoint = dir.resolve("bloom-256");
        RandomCheckpoint.write(BloomConfig.of(1024, 256, 4, 2), checkpoint, DType.F32, 256);
    }

    record Layout(DType dtype, Int8Mode int8, boolean forInference) {}

    @Test
    void theMergedArgmaxIsTorchsArgmaxOfTheLogits() {
        List<Layout> layouts = List.of(new Layout(DType.F32, Int8Mode.NONE, false), new Layout(DType.BF16, Int8Mode.NONE, false),
                new Layout(DType.BF16, Int8Mode.NONE, true), new Layout(DType.BF16, Int8Mode.WEIGHT_ONLY, true),
                new Layout(DType.F32, Int8Mode.WEIGHT_ONLY, true),
                new Layout(DType.F32, Int8Mode.WEIGHT_ONLY, false), new Layout(DType.F32, Int8Mode.LLM_INT8, false),
                new Layout(DType.BF16, Int8Mode.WEIGHT_ONLY, false), new Layout(DType.BF16, Int8Mode.LLM_INT8, false));
        for (Layout layout : layouts) {
            LoadOptions options = LoadOptions.defaults().withDtype(layout.dtype());
            if (layout.forInference()) options = options.forInference();
            if (layout.int8() != Int8Mode.NONE) options = options.withInt8(Int8Options.of(layout.int8()));
            try (BloomModel model = BloomModel.load(checkpoint, options)) {
                for (int rows : new int[]{3, 1}) {
                    long before = model.nativeArgmaxSteps();
                    decodeBothWays(model, rows, layout + " rows " + rows);
                    if (nativeHeadRuns(model, rows)) {
                        assertEquals(STEPS, model.nativeArgmaxSteps() - before, layout + " rows " + rows + ": decode steps by the native head");
                    }
                }
            }
        }
    }

    /** True when this CPU has every row kernel the native step and its head need for the model at these rows. */
    static boolean nativeHeadRuns(BloomModel model, int rows) {
        if (!DecodeBlocksTest.nativeRuns(model, rows)) return false;
        try (Tensor x = torch.zeros(rows, model.config().hiddenSize()).to(model.dtype().scalarType())) {
            return model.wordEmbeddings().rowKernel(x) != null;
        }
    }

    /** Two caches fed the same tokens: one step by the logits and libtorch's argmax, the other by the merged argmax. */
    private static void decodeBothWays(BloomModel model, int rows, String what) {
        LeftPaddedPrompts prompts = LeftPaddedPrompts.of(PROMPTS, rows);
        int width = prompts.width();
        long[] ids = prompts.ids();
        long[] mask = prompts.mask();
        try (KvCache byLogits = new KvCache(model.config().numLayers(), width + STEPS);
             KvCache merged = new KvCache(model.config().numLayers(), width + STEPS)) {
            int keys = width;
            for (int s = 0; s <= STEPS; s++) {
                long[] expected;
                long[] got;
                try (Tensor in = Tensors.fromLongs(ids, rows, ids.length / rows); Tensor m = Tensors.fromLongs(mask, rows, keys)) {
                    try (Tensor logits = model.nextTokenLogits(CausalLmInput.ids(in).mask(m), byLogits);
                         Tensor best = logits.argmax(new LongOptional(-1), false)) {
                        expected = Tensors.toLongs(best);
                    }
                    got = model.nextTokenArgmax(CausalLmInput.ids(in).mask(m), merged);
                }
                assertArrayEquals(expected, got, what + " step " + s);
                ids = expected;
                keys++;
                mask = LeftPaddedPrompts.grown(mask, rows, keys);
            }
        }
    }
}
