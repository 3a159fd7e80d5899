package org.bloomtune.cli;

import org.bloomtune.ChildJvm;
import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The memory estimate `generate` refuses a run on, against the peak the generation really adds
 * (`--stats`, measured in a child JVM): long prompts in a batch, so that the prefill's attention
 * and the KV cache are most of it. It must bound the peak, and not by so much that a run which fits
 * is refused.
 */
class GenerationMemoryTest {
    private static final BloomConfig SHAPE = BloomConfig.of(4096, 256, 4, 12);
    private static final Pattern PEAK = Pattern.compile("\\+(\\d+) MiB above the loaded model; estimated \\+(\\d+) MiB");

    @TempDir
    Path dir;

    @Test
    void estimateBoundsThePeakOfALongBatchedGeneration() throws Exception {
        // Stored in float16 so that both compute dtypes copy the weights at load (a mapped file's
        // pages would come in during the generation and count as its memory).
        RandomCheckpoint.write(SHAPE, dir, DType.F16, 3);
        String ids = IntStream.range(0, 1000).mapToObj(i -> Integer.toString(5 + i * 7 % 4000)).collect(Collectors.joining(","));
        for (String dtype : List.of("fp32", "bf16")) {
            List<String> command = ChildJvm.cli("-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch");
            command.addAll(List.of("generate", "--model", dir.toString(), "--dtype", dtype, "--max-new-tokens", "200", "--eos-id", "-1", "--stats"));
            for (int row = 0; row < 4; row++) command.addAll(List.of("--ids", ids));
            String out = run(command);
            Matcher m = PEAK.matcher(out);
            assertTrue(m.find(), out);
            long measured = Long.parseLong(m.group(1));
            long estimated = Long.parseLong(m.group(2));
            System.out.printf("generate %s, 4 × 1000 + 200: peak +%d MiB, estimated +%d MiB%n", dtype, measured, estimated);
            assertTrue(estimated >= measured, dtype + ": the estimate must bound the peak: " + out);
            assertTrue(estimated <= 1.25 * measured + 64, dtype + ": the estimate is too loose to refuse a run on: " + out);
        }
    }

    /** Output to a file, so a child that hangs is stopped by the timeout rather than blocking a read. */
    private String run(List<String> command) throws Exception {
        Path log = Files.createTempFile(dir, "generate", ".log");
        Process p = new ProcessBuilder(new ArrayList<>(command)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(3, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("generate did not finish in 3 minutes");
        }
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        return out;
    }
}
