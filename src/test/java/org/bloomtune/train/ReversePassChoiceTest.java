package org.bloomtune.train;

import org.bloomtune.MeasuredPeak;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReversePassChoiceTest {
    /**
     * Deep enough that the recorded blocks (hundreds of MiB) outweigh the head and the allocator's
     * slack, so an estimate counting a block twice over would be caught.
     */
    private static final BloomConfig SHAPE = BloomConfig.of(4096, 256, 4, 12);

    @TempDir
    Path dir;

    @Test
    void autoTakesAutogradWhenItFitsTheBudgetAndRecomputeOtherwise() {
        RandomCheckpoint.write(SHAPE, dir, DType.F32, 1);
        try (BloomModel model = BloomModel.load(dir)) {
            ReversePassChoice roomy = ReversePassChoice.choose(ReversePass.AUTO, model, 4, 266, Long.MAX_VALUE);
            assertEquals(ReversePass.AUTOGRAD, roomy.pass());
            assertTrue(roomy.recompute().total() < roomy.autograd().total(), roomy.reason());
            long between = (roomy.recompute().total() + roomy.autograd().total()) / 2;
            assertEquals(ReversePass.RECOMPUTE_BLOCKS, ReversePassChoice.choose(ReversePass.AUTO, model, 4, 266, between).pass());
            // The caching allocator may keep up to its limit (or the peak, when smaller) on top: a budget must leave room for it.
            long cached = CpuCachingAllocator.cacheAllowance(roomy.autograd().total());
            assertTrue(cached > 0 && cached <= CpuCachingAllocator.DEFAULT_CACHE_LIMIT, "allowance " + cached);
            assertEquals(ReversePass.RECOMPUTE_BLOCKS, ReversePassChoice.choose(ReversePass.AUTO, model, 4, 266, roomy.autograd().total()).pass(),
                    "the estimate fits, its cached buffers do not");
            assertEquals(ReversePass.AUTOGRAD, ReversePassChoice.choose(ReversePass.AUTO, model, 4, 266, roomy.autograd().total() + cached).pass());
            assertTrue(roomy.reason().contains(MemoryEstimate.size(roomy.autograd().total() + cached)), roomy.reason());
            assertEquals(ReversePass.AUTOGRAD, ReversePassChoice.choose(ReversePass.AUTOGRAD, model, 4, 266, 1).pass(), "asked for: kept");
            assertThrows(IllegalArgumentException.class, () -> ReversePassChoice.choose(ReversePass.AUTO, model, 4, 266, 0));
        }
    }

    /**
     * The estimate auto decides on, against the peak resident memory a step really adds (measured
     * by profile-step in a fresh JVM), in float32 and bfloat16: it must not be below it, nor so far
     * above that auto would refuse AUTOGRAD where it fits.
     */
    @Test
    void estimatedPeakBoundsTheMeasuredPeakOfEachPass() throws Exception {
        // Stored in float16 so that every mode copies the weights at load: a file in the compute dtype is mapped
        // and paged in by the first step, which would count the weights as the step's.
        RandomCheckpoint.write(SHAPE, dir, DType.F16, 1);
        for (List<String> pass : List.of(List.of("AUTOGRAD"), List.of("AUTOGRAD", "--dtype", "bf16"), List.of("RECOMPUTE_BLOCKS"),
                List.of("RECOMPUTE_BLOCKS", "--dtype", "bf16"),
                List.of("RECOMPUTE_BLOCKS", "--int8", "llm-int8"), List.of("RECOMPUTE_BLOCKS", "--int8", "weight-only"))) {
            List<String> args = new ArrayList<>(List.of("profile-step", "--model", dir.toString(),
                    "--batch-size", "4", "--max-length", "256", "--steps", "2", "--reverse-pass"));
            args.addAll(pass);
            // auto decides on AUTOGRAD's estimate, so it must be close; RECOMPUTE_BLOCKS's only has to be safe.
            MeasuredPeak.of(args, dir).assertBounds(pass.getFirst().equals("AUTOGRAD") ? 1.15 : 2, pass.toString());
        }
    }

    /**
     * The same on real data: the seed recipe's Alpaca-zh rows batch to a new shape every step, which
     * fills the caching allocator with buffers no later request fits — what auto's figure adds on
     * top of the estimate. `train` reports the peak it measured against that figure.
     */
    @Test
    void autoFigureBoundsTheMeasuredPeakOfATrainingRunOfChangingShapes() throws Exception {
        RandomCheckpoint.write(SHAPE, dir, DType.F16, 1);
        for (String dtype : List.of("fp32", "bf16")) {
            List<String> args = List.of("train", "--model", dir.toString(), "--data", "models/demo-data/alpaca_zh_demo_first300.json",
                    "--tokenizer", "models/bloom-tiny/tokenizer.json", "--max-steps", "24", "--eval-split", "0",
                    "--dtype", dtype, "--output", dir.resolve("run-" + dtype).toString());
            MeasuredPeak peak = MeasuredPeak.of(args, dir);
            assertTrue(peak.output().contains("reverse pass AUTOGRAD"), peak.output());
            peak.assertBounds(2, "train " + dtype);
        }
    }
}
