package org.bloomtune.generate;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.LoadOptions;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A generation's timings: the decode steps' median beside their mean. */
class GenerationStatsTest {

    @Test
    void medianOfOddAndEvenCountsAndOfNone() {
        long[] nanos = {5_000_000, 1_000_000, 9_000_000, 3_000_000, 777};   // the last one past the count
        assertEquals(0.005, GenerationStats.medianSeconds(nanos, 3), 1e-15);
        assertEquals(0.004, GenerationStats.medianSeconds(nanos, 4), 1e-15);
        assertTrue(Double.isNaN(GenerationStats.medianSeconds(nanos, 0)));
    }

    @Test
    void aGenerationReportsEveryDecodeStepAndTheirMedian() {
        try (BloomModel model = BloomModel.load(Reference.reference("hf").resolve("a").resolve("model"), LoadOptions.defaults())) {
            // More steps than the first 256 the generator makes room for, no end-of-sequence id: every step runs.
            GenerationStats stats = new Generator(model).generate(List.of(new long[]{3, 5, 7}), GenerationConfig.greedy(300, -1),
                    TokenListener.NONE).stats();
            assertEquals(299, stats.decodeSteps());
            double median = stats.medianDecodeStepSeconds();
            assertTrue(median > 0 && median * stats.decodeSteps() / 2 <= stats.decodeSeconds(),
                    "half the steps take at least the median: " + median + " s of " + stats.decodeSeconds() + " s");
            assertTrue(stats.summary().contains(String.format(java.util.Locale.ROOT, "median %.2f", 1e3 * median)), stats.summary());

            GenerationStats none = new Generator(model).generate(List.of(new long[]{3}), GenerationConfig.greedy(1, -1), TokenListener.NONE).stats();
            assertEquals(0, none.decodeSteps());
            assertTrue(Double.isNaN(none.medianDecodeStepSeconds()));
        }
    }
}
