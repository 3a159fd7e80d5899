package org.bloomtune.bench;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.ProcessMemory;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * KV-cache generation: a 32-token prompt per row, then {@link #NEW_TOKENS} greedy tokens (no EOS
 * stop), prefill included. A row is {@code "shape mode batch"}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class GenerateBenchmark {
    static final int PROMPT = 32;
    static final int NEW_TOKENS = 32;

    @Param({
            "bloom-560m fp32 1", "bloom-560m fp32 4", "bloom-560m bf16 1", "bloom-560m bf16 8", "bloom-560m bf16-int8-weight-only 1",
            "bloom-560m int8-weight-only 1", "bloom-560m int8-weight-only 8",
            "bloom-560m int8-llm-int8 1", "bloom-560m int8-llm-int8 4", "tiny fp32 1", "tiny fp32 4",
    })
    public String row;

    private BloomModel model;
    private List<long[]> prompts;

    @Setup(Level.Trial)
    public void setUp() {
        String[] p = row.split(" ");
        model = BloomModel.load(Checkpoints.random(p[0]), Modes.options(p[1]).forInference());
        Random r = new Random(2);
        prompts = new ArrayList<>();
        for (int b = 0; b < Integer.parseInt(p[2]); b++) {
            long[] ids = new long[PROMPT];
            for (int i = 0; i < PROMPT; i++) ids[i] = r.nextInt(model.config().vocabSize());
            prompts.add(ids);
        }
    }

    /** The process's peak resident memory during the generation. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Memory {
        public long peakRssMiB;
    }

    @Benchmark
    public long generate(Memory memory) {
        ProcessMemory.resetPeak();
        long first = new Generator(model).generate(prompts, GenerationConfig.greedy(NEW_TOKENS, -1), TokenListener.NONE).row(0)[0];
        memory.peakRssMiB = ProcessMemory.peakResidentBytes() >> 20;
        return first;
    }

    @TearDown(Level.Trial)
    public void tearDown() { model.close(); }
}
