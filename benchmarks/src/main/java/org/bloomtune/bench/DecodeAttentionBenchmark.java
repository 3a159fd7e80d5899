package org.bloomtune.bench;

import org.bloomtune.kernels.DecodeAttention;
import org.bloomtune.model.Alibi;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.LibTorch;
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

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One decode step's attention over the KV cache at bloom-560m shape (24 layers, 16 heads of 64)
 * through {@link DecodeAttention}, as a step calls it: per layer, the new key and value written at
 * {@code past} and every (row, head) attending over past + 1 positions, at batch 1 and 8 in float32
 * (the 8-bit modes' activations) and bfloat16. The layers' buffers are a
 * ring of at least {@value #RING_BYTES} bytes walked a step at a time, so each step reads its cache
 * from memory, not from a cache level the previous step filled (in a real step the layers' weights
 * pass in between).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class DecodeAttentionBenchmark {
    private static final int LAYERS = 24, HEADS = 16, HEAD_DIM = 64;
    private static final long RING_BYTES = 512L << 20;

    @Param({"fp32", "bf16"})
    public String dtype;

    @Param({"1", "8"})
    public int batch;

    @Param({"136"})
    public int past;

    private final List<Tensor[]> ring = new ArrayList<>();
    private Tensor qkv;
    private Tensor alibi;
    private Tensor masked;
    private int next;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        ScalarType type = dtype.equals("bf16") ? ScalarType.BFloat16 : ScalarType.Float;
        long pairs = (long) batch * HEADS;
        long capacity = (past + 128 + 31) / 32 * 32;        // rounded up to whole lines of positions, as KvCache allocates
        long bytesPerLayer = 2 * pairs * capacity * HEAD_DIM * elementBytes(dtype);
        long layers = Math.max(LAYERS, (RING_BYTES / bytesPerLayer + LAYERS - 1) / LAYERS * LAYERS);
        try (GradMode off = GradMode.off()) {
            for (long i = 0; i < layers; i++) {
                Tensor keys = torch.randn(pairs, HEAD_DIM, capacity).to(type);          // as KvCache keeps them
                ring.add(new Tensor[]{keys, torch.randn(pairs, capacity, HEAD_DIM).to(type)});
            }
            qkv = torch.randn(batch, 1, 3L * HEADS * HEAD_DIM).to(type);
            Tensor mask = torch.ones(batch, past + 1).to(ScalarType.Long);
            alibi = Alibi.bias(mask, HEADS, type);
            masked = mask.eq(new Scalar(0)).view(batch, 1, 1, past + 1);
        }
        if (!DecodeAttention.applies(qkv, ring.getFirst()[0], ring.getFirst()[1], past, alibi, masked, HEADS)) {
            throw new IllegalStateException("the native decode attention is not built on this platform");
        }
    }

    /** Bytes of keys and values one step reads: past + 1 positions of every (row, head) pair in every layer. */
    static long bytesPerStep(String dtype, int batch, int past) {
        return 2L * LAYERS * batch * HEADS * (past + 1) * HEAD_DIM * elementBytes(dtype);
    }

    private static int elementBytes(String dtype) { return dtype.equals("bf16") ? 2 : 4; }

    /** The 24 layers of one step; returns the merged heads' elements so the calls are not dropped. */
    @Benchmark
    public long step() {
        long elements = 0;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            for (int layer = 0; layer < LAYERS; layer++) {
                Tensor[] kv = ring.get(next);
                next = (next + 1) % ring.size();
                elements += DecodeAttention.forward(qkv, kv[0], kv[1], past, alibi, masked, HEADS).numel();
            }
        }
        return elements;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor[] kv : ring) {
            kv[0].close();
            kv[1].close();
        }
        qkv.close();
        alibi.close();
        masked.close();
    }
}
