package org.bloomtune.bench;

import org.bloomtune.model.LlmInt8;
import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
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
 * LLM.int8 activation quantization with outlier columns: the fused C kernel (native/) against the
 * libtorch op chain, at decode ([1, K]) and prefill ([4·256, K]) shapes of bloom-560m, from float32
 * or float16 rows.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class QuantizeBenchmark {
    @Param({"1x1024", "1024x1024", "1024x4096"})
    public String shape;

    @Param({"NATIVE", "LIBTORCH"})
    public LlmInt8.Quantizer quantizer;

    /** float32 activations, or float16 rows as a float16 checkpoint's weights are quantized at load. */
    @Param({"float32", "float16"})
    public String dtype;

    private Tensor x;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        String[] p = shape.split("x");
        x = torch.randn(Long.parseLong(p[0]), Long.parseLong(p[1]));
        // A few outlier columns, as in real BLOOM activations.
        for (long c = 3; c < x.size(1); c += 257) x.select(1, c).mul_(new org.bytedeco.pytorch.Scalar(8.0));
        if (dtype.equals("float16")) {
            Tensor half = x.to(torch.ScalarType.Half);
            x.close();
            x = half;
        }
    }

    @Benchmark
    public int quantize() {
        try (PointerScope scope = new PointerScope()) {
            return LlmInt8.quantize(x, 6.0, quantizer).outliers();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        x.close();
    }
}
