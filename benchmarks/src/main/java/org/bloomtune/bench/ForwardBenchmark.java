package org.bloomtune.bench;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
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

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Forward throughput (no grad, full logits) on seeded random checkpoints ({@link Checkpoints}): a
 * row is {@code "shape mode batch seq"}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class ForwardBenchmark {
    @Param({
            "bloom-560m fp32 1 256", "bloom-560m fp32 4 256", "bloom-560m bf16 1 256", "bloom-560m bf16 4 256",
            "bloom-560m int8-weight-only 1 256", "bloom-560m bf16-int8-weight-only 1 256", "bloom-560m int8-llm-int8 1 256",
            "bloom-560m int8-llm-int8 4 256", "bloom-560m int8-dequantize 1 256", "tiny fp32 1 256", "tiny fp32 4 256",
    })
    public String row;

    private BloomModel model;
    private Tensor ids;

    /** Weight bytes and the process's peak resident memory during the forward. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Memory {
        public long weightMiB;
        public long peakRssMiB;
    }

    @Setup(Level.Trial)
    public void setUp() {
        String[] p = row.split(" ");
        model = BloomModel.load(Checkpoints.random(p[0]), Modes.options(p[1]));
        int batch = Integer.parseInt(p[2]);
        int seq = Integer.parseInt(p[3]);
        Random r = new Random(0);
        long[] values = new long[batch * seq];
        for (int i = 0; i < values.length; i++) values[i] = r.nextInt(model.config().vocabSize());
        ids = Tensors.fromLongs(values, batch, seq);
    }

    @Benchmark
    public void forward(Memory memory) {
        ProcessMemory.resetPeak();
        try (GradMode off = GradMode.off()) {
            model.forward(CausalLmInput.ids(ids)).close();
        }
        memory.weightMiB = model.residentWeightBytes() >> 20;
        memory.peakRssMiB = ProcessMemory.peakResidentBytes() >> 20;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ids.close();
        model.close();
    }
}
