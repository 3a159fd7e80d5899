package org.bloomtune.bench;

import org.bloomtune.kernels.Gelu;
import org.bloomtune.kernels.MaskedSoftmax;
import org.bloomtune.model.AttentionMask;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
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
 * The bf16 training step's GELU and attention probabilities, one layer's worth at bloom-560m shape
 * (4 × 266 positions: the GELU over [1064, 4096], the probabilities over [4 · 16, 266, 266] with a
 * causal mask): the native kernels against libtorch's ops, forward alone and forward plus backward
 * (libtorch's through autograd, as a recorded step runs them; the kernels called directly), and the
 * probabilities of a pass no backward follows (generation's prefill, evaluation): the native
 * forward-only kernel, which keeps no float32 probabilities.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class AttentionMlpOpsBenchmark {
    private static final double FLOAT32_LOWEST = -3.4028234663852886e38;

    @Param({"gelu", "gelu+backward", "probabilities", "probabilities+backward", "inference-probabilities"})
    public String op;

    @Param({"NATIVE", "LIBTORCH"})
    public String implementation;

    private Tensor x;
    private Tensor dy;
    private Tensor mask;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        boolean gelu = op.startsWith("gelu");
        long[] shape = gelu ? new long[]{1064, 4096} : new long[]{64, 266, 266};
        x = torch.randn(shape).mul(new Scalar(3.0)).to(ScalarType.BFloat16);
        dy = torch.randn(shape).to(ScalarType.BFloat16);
        mask = AttentionMask.build(torch.ones(4, 266), 266);
        if (implementation.equals("NATIVE") && !(gelu ? Gelu.applies(x) : MaskedSoftmax.applies(x, mask, 16))) {
            throw new IllegalStateException("the native kernels are not built on this platform");
        }
    }

    @Benchmark
    public long run() {
        boolean backward = op.endsWith("+backward");
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor out = op.startsWith("gelu") ? gelu(backward)
                    : op.startsWith("inference") ? inferenceProbabilities() : probabilities(backward);
            return out.numel();
        }
    }

    private Tensor gelu(boolean backward) {
        if (implementation.equals("NATIVE")) {
            Tensor y = Gelu.forward(x);
            return backward ? Gelu.backward(dy, x) : y;          // the backward reads x, as a recorded GELU's does
        }
        if (!backward) return torch.gelu(x, "tanh");
        Tensor leaf = x.detach().requires_grad_(true);
        Autograd.backward(torch.gelu(leaf, "tanh"), dy);
        return Tensors.gradient(leaf);
    }

    private Tensor probabilities(boolean backward) {
        if (implementation.equals("NATIVE")) {
            MaskedSoftmax.Probabilities p = MaskedSoftmax.forward(x, mask, 16);
            return backward ? MaskedSoftmax.backward(dy, p.float32(), mask, 16) : p.bfloat16();
        }
        Tensor leaf = backward ? x.detach().requires_grad_(true) : x;
        Tensor p = leaf.view(4, 16, 266, 266).to(ScalarType.Float).masked_fill(mask, new Scalar(FLOAT32_LOWEST)).softmax(-1)
                .to(ScalarType.BFloat16);
        if (!backward) return p;
        Autograd.backward(p, dy.view(4, 16, 266, 266));
        return Tensors.gradient(leaf);
    }

    private Tensor inferenceProbabilities() {
        if (implementation.equals("NATIVE")) return MaskedSoftmax.forwardOnly(x, mask, 16);
        try (GradMode off = GradMode.off()) {
            return x.view(4, 16, 266, 266).to(ScalarType.Float).masked_fill(mask, new Scalar(FLOAT32_LOWEST)).softmax(-1).to(ScalarType.BFloat16);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        x.close();
        dy.close();
        mask.close();
    }
}
