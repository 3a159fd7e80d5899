package org.bloomtune.bench;

import org.bloomtune.kernels.Bf16Gemm;
import org.bloomtune.kernels.F32Gemm;
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
 * {@code int8} is LLM.int8's product, {@code _int_mm} (int8 × int8 → int32, through the C shim)
 * into a preallocated output, to set its rate against the float GEMMs at the same shape.
 * {@code bf16-native} is BloomTune's own bfloat16 GEMM ({@code Bf16Gemm}, a linear layer's
 * {@code x Wᵀ} into a preallocated output), {@code fp32-native} its float32 one ({@code F32Gemm}):
 * each dtype's peak is the faster of libtorch's and BloomTune's, so a step that uses the native
 * GEMM is not measured against a roofline it beats.
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

    @Param({"fp32", "fp32-native", "bf16", "bf16-native"})
    public String dtype;

    private Tensor a;
    private Tensor b;
    private Tensor out;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        long[] mkn = parse(shape);
        if (dtype.equals("int8")) {
            a = torch.randn(mkn[0], mkn[1]).mul(new org.bytedeco.pytorch.Scalar(30)).to(ScalarType.Char);
            b = torch.randn(mkn[2], mkn[1]).mul(new org.bytedeco.pytorch.Scalar(30)).to(ScalarType.Char).t();   // as LlmInt8: Wᵀ of [N, K]
            out = torch.empty(new long[]{mkn[0], mkn[2]}, new org.bytedeco.pytorch.TensorOptions(ScalarType.Int),
                    new org.bytedeco.pytorch.MemoryFormatOptional());
            return;
        }
        if (dtype.equals("bf16-native")) {
            if (!Bf16Gemm.supported()) throw new IllegalStateException("no AVX512_BF16 on this CPU: no bf16-native row");
            a = torch.randn(mkn[0], mkn[1]).to(ScalarType.BFloat16);
            b = torch.randn(mkn[2], mkn[1]).to(ScalarType.BFloat16);                                   // W [N, K]
            out = torch.empty(new long[]{mkn[0], mkn[2]}, new org.bytedeco.pytorch.TensorOptions(ScalarType.BFloat16),
                    new org.bytedeco.pytorch.MemoryFormatOptional());
            return;
        }
        if (dtype.equals("fp32-native")) {
            if (!F32Gemm.supported()) throw new IllegalStateException("no AVX-512F on this CPU: no fp32-native row");
            a = torch.randn(mkn[0], mkn[1]);
            b = torch.randn(mkn[2], mkn[1]);                                                            // W [N, K]
            out = torch.empty(new long[]{mkn[0], mkn[2]}, new org.bytedeco.pytorch.TensorOptions(ScalarType.Float),
                    new org.bytedeco.pytorch.MemoryFormatOptional());
            return;
        }
        ScalarType type = dtype.equals("bf16") ? ScalarType.BFloat16 : ScalarType.Float;
        a = torch.randn(mkn[0], mkn[1]).to(type);
        b = torch.randn(mkn[1], mkn[2]).to(type);
    }

    @Benchmark
    public void matmul() {
        if (dtype.equals("bf16-native")) {
            Bf16Gemm.linearInto(out, a, b);
            return;
        }
        if (dtype.equals("fp32-native")) {
            F32Gemm.linearInto(out, a, b);
            return;
        }
        if (out != null) {
            org.bloomtune.tensor.shim.AtenShim.intMm(out, a, b);
            return;
        }
        try (PointerScope scope = new PointerScope()) {
            a.matmul(b);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        a.close();
        b.close();
        if (out != null) out.close();
    }

    static long[] parse(String shape) {
        String[] p = shape.split("x");
        return new long[]{Long.parseLong(p[0]), Long.parseLong(p[1]), Long.parseLong(p[2])};
    }
}
