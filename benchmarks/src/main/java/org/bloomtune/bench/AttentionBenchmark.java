package org.bloomtune.bench;

import org.bloomtune.kernels.WholeAttention;
import org.bloomtune.model.AttentionMask;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
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
 * One layer's attention of the training step at bloom-560m shape (4 × 266 positions, 16 heads of
 * 64, causal mask) in bfloat16 or float32, from the fused QKV to the merged heads: the native kernel
 * ({@link WholeAttention}) against HF's chain run by libtorch (split heads, baddbmm, cast, masked
 * fill, softmax, cast, bmm, merge), forward alone (libtorch's recording its graph, as a step's
 * forward does) and forward plus backward to the fused QKV (libtorch's through autograd; the kernel
 * called directly, its backward forming the probabilities again).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class AttentionBenchmark {
    private static final double FLOAT32_LOWEST = -3.4028234663852886e38;
    private static final long BATCH = 4, POSITIONS = 266, HEADS = 16, HEAD_DIM = 64;

    @Param({"attention", "attention+backward"})
    public String op;

    @Param({"NATIVE", "LIBTORCH"})
    public String implementation;

    @Param({"bf16", "fp32"})
    public String dtype;

    private Tensor qkv;
    private Tensor alibi;
    private Tensor mask;
    private Tensor grad;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        ScalarType type = dtype.equals("bf16") ? ScalarType.BFloat16 : ScalarType.Float;
        qkv = torch.randn(BATCH, POSITIONS, HEADS * 3 * HEAD_DIM).mul(new Scalar(1.5)).to(type);
        alibi = torch.randn(BATCH * HEADS, 1, POSITIONS).to(type);
        mask = AttentionMask.build(torch.ones(BATCH, POSITIONS), POSITIONS);
        grad = torch.randn(BATCH, POSITIONS, HEADS * HEAD_DIM).to(type);
        if (implementation.equals("NATIVE") && !WholeAttention.applies(qkv, alibi, mask, HEADS)) {
            throw new IllegalStateException("the native " + dtype + " kernel is not built on this platform, or the CPU lacks what it needs");
        }
    }

    @Benchmark
    public long run() {
        boolean backward = op.endsWith("+backward");
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            if (implementation.equals("NATIVE")) {
                Tensor merged = WholeAttention.forward(qkv, alibi, mask, HEADS);
                return backward ? WholeAttention.backward(grad, qkv, alibi, mask, HEADS).numel() : merged.numel();
            }
            Tensor leaf = qkv.detach().requires_grad_(true);
            Tensor merged = hfChain(leaf);
            if (!backward) return merged.numel();
            Autograd.backward(merged, grad);
            return Tensors.gradient(leaf).numel();
        }
    }

    /** HF's eager attention in the fused QKV's dtype, by libtorch's ops (the softmax in float32). */
    private Tensor hfChain(Tensor fused) {
        TensorVector parts = fused.view(BATCH, POSITIONS, HEADS, 3, HEAD_DIM).unbind(3);
        Tensor q = parts.get(0).transpose(1, 2).reshape(BATCH * HEADS, POSITIONS, HEAD_DIM);
        Tensor k = parts.get(1).permute(0, 2, 3, 1).reshape(BATCH * HEADS, HEAD_DIM, POSITIONS);
        Tensor v = parts.get(2).transpose(1, 2).reshape(BATCH * HEADS, POSITIONS, HEAD_DIM);
        Tensor scores = alibi.baddbmm(q, k, new Scalar(1.0), new Scalar(1.0 / Math.sqrt(HEAD_DIM)));
        Tensor probs = scores.view(BATCH, HEADS, POSITIONS, POSITIONS).to(ScalarType.Float).masked_fill(mask, new Scalar(FLOAT32_LOWEST))
                .softmax(-1).to(fused.scalar_type());
        return torch.bmm(probs.view(BATCH * HEADS, POSITIONS, POSITIONS), v).view(BATCH, HEADS, POSITIONS, HEAD_DIM)
                .permute(0, 2, 1, 3).reshape(BATCH, POSITIONS, HEADS * HEAD_DIM);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        qkv.close();
        alibi.close();
        mask.close();
        grad.close();
    }
}
