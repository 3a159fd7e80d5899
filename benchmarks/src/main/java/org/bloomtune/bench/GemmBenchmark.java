package org.bloomtune.bench;

import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
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

import java.util.concurrent.TimeUnit;

/**
 * The roofline: libtorch GEMM throughput at the model's matrix shapes, so model FLOP utilization
 * is computed against a peak measured in the same run. Shape "MxKxN" multiplies [M, K] · [K, N].
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class GemmBenchmark {
    @Param({"1024x1024x1024", "1024x1024x4096", "1024x4096x1024"})
    public String shape;

    @Param({"fp32", "bf16"})
    public String dtype;

    private Tensor a;
    private Tensor b;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        long[] mkn = parse(shape);
        ScalarType type = dtype.equals("bf16") ? ScalarType.BFloat16 : ScalarType.Float;
        a = torch.randn(mkn[0], mkn[1]).to(type);
        b = torch.randn(mkn[1], mkn[2]).to(type);
    }

    @Benchmark
    public void matmul() {
        try (PointerScope scope = new PointerScope()) {
            a.matmul(b);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        a.close();
        b.close();
    }

    static long[] parse(String shape) {
        String[] p = shape.split("x");
        return new long[]{Long.parseLong(p[0]), Long.parseLong(p[1]), Long.parseLong(p[2])};
    }
}
