package org.bloomtune.bench;

import org.bloomtune.kernels.OnlineSoftmax;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.LibTorch;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
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
 * One vocabulary block of the streamed cross-entropy's online softmax: the C kernel (native/)
 * against libtorch's ops, at the block bloom-560m's head uses with every token labelled (4 × 256
 * rows, 65536 of the 250880 columns) and a narrow one.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class OnlineSoftmaxBenchmark {
    @Param({"1024x65536", "1024x4096"})
    public String shape;

    @Param({"NATIVE", "LIBTORCH"})
    public OnlineSoftmax.Implementation implementation;

    private Tensor block;
    private OnlineSoftmax.State state;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        String[] p = shape.split("x");
        block = torch.randn(Long.parseLong(p[0]), Long.parseLong(p[1]));
        state = OnlineSoftmax.State.start(block.size(0), DType.F32, new Device("cpu"));
    }

    /** In place, so later calls see exp() of the earlier block: finite values in (0, 1], as valid an input. */
    @Benchmark
    public Tensor update() {
        OnlineSoftmax.update(block, state, implementation);
        return block;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        block.close();
    }
}
