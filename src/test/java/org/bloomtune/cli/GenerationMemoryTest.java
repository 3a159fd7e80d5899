package org.bloomtune.cli;

import org.bloomtune.MeasuredPeak;
import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * The memory estimate `generate` refuses a run on, against the peak the generation really adds
 * (`--stats`, measured in a child JVM): long prompts in a batch, so that the prefill's attention
 * and the KV cache are most of it. It must bound the peak, and not by so much that a run which fits
 * is refused.
 */
class GenerationMemoryTest {
    private static final BloomConfig SHAPE = BloomConfig.of(4096, 256, 4, 12);

    @TempDir
    Path dir;

    @Test
    void estimateBoundsThePeakOfALongBatchedGeneration() throws Exception {
        // Stored in float16 so that both compute dtypes copy the weights at load (a mapped file's
        // pages would come in during the generation and count as its memory).
        RandomCheckpoint.write(SHAPE, dir, DType.F16, 3);
        String ids = IntStream.range(0, 1000).mapToObj(i -> Integer.toString(5 + i * 7 % 4000)).collect(Collectors.joining(","));
        for (String dtype : List.of("fp32", "bf16")) {
            List<String> args = new ArrayList<>(List.of("generate", "--model", dir.toString(), "--dtype", dtype,
                    "--max-new-tokens", "200", "--eos-id", "-1", "--stats"));
            for (int row = 0; row < 4; row++) args.addAll(List.of("--ids", ids));
            MeasuredPeak.of(args, dir).assertBounds(1.25, "generate " + dtype + ", 4 × 1000 + 200");
        }
    }
}
