package org.bloomtune.bench;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.Int8Mode;
import org.bloomtune.model.Int8Options;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;
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
 * Forward throughput on a bloom-560m-shaped random checkpoint ({@link Checkpoints}), one batch of
 * {@code batch × seq} tokens, in each compute / int8 mode.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class ForwardBenchmark {
    @Param({"fp32", "bf16", "int8-weight-only", "bf16-int8-weight-only", "int8-llm-int8", "int8-dequantize"})
    public String mode;

    @Param({"bloom-560m"})
    public String shape;

    @Param({"1"})
    public int batch;

    @Param({"1", "256"})
    public int seq;

    private BloomModel model;
    private Tensor ids;

    /** Resident memory, reported beside the time. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Memory {
        public long weightMiB;
        public long rssMiB;
    }

    @Setup(Level.Trial)
    public void setUp() {
        LoadOptions options = switch (mode) {
            case "fp32" -> LoadOptions.defaults();
            case "bf16" -> LoadOptions.defaults().withDtype(DType.BF16);
            case "int8-weight-only" -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.WEIGHT_ONLY));
            case "bf16-int8-weight-only" -> LoadOptions.defaults().withDtype(DType.BF16).withInt8(Int8Options.of(Int8Mode.WEIGHT_ONLY));
            case "int8-llm-int8" -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.LLM_INT8));
            case "int8-dequantize" -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.DEQUANTIZE));
            default -> throw new IllegalArgumentException(mode);
        };
        model = BloomModel.load(Checkpoints.random(shape), options);
        Random r = new Random(0);
        long[] values = new long[batch * seq];
        for (int i = 0; i < values.length; i++) values[i] = r.nextInt(model.config().vocabSize());
        ids = Tensors.fromLongs(values, batch, seq);
    }

    @Benchmark
    public void forward(Memory memory) {
        try (GradMode off = GradMode.off()) {
            model.forward(CausalLmInput.ids(ids)).close();
        }
        memory.weightMiB = model.residentWeightBytes() >> 20;
        memory.rssMiB = ProcessMemory.residentBytes() >> 20;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ids.close();
        model.close();
    }
}
