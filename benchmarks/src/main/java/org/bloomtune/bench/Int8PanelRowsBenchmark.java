package org.bloomtune.bench;

import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.LlmInt8Panels;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.Tensors;
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

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * A decode step's input rows looked up in an inference-only int8 model's word embedding, which lives
 * in the tied lm_head's panels (bloom-560m's 250880 × 1024): the one native call
 * ({@code Int8Bf16Panels.rows}, {@code LlmInt8Panels.rows}) against the libtorch chain it replaced —
 * gather the int8 values from the panels, cast, look the scales up, cast, multiply. Ids are drawn
 * at random over the vocabulary, so most rows come from memory, as a decode step's do.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class Int8PanelRowsBenchmark {
    private static final long VOCAB = 250880, HIDDEN = 1024;
    private static final int ID_SETS = 256;

    /** The panel order: weight-only int8 (pairs of k) or LLM.int8's (words of four k). */
    @Param({"weight-only", "llm-int8"})
    public String layout;

    @Param({"float32", "bfloat16"})
    public String dtype;

    /** Rows looked up at once: a decode step's batch. */
    @Param({"1", "8"})
    public int rows;

    @Param({"NATIVE", "LIBTORCH"})
    public String implementation;

    private Tensor panels;
    private Tensor scales;
    private Tensor scaleColumn;
    private Tensor[] ids;
    private ScalarType type;
    private int next;

    @Setup(Level.Trial)
    public void setUp() {
        LibTorch.init();
        boolean weightOnly = layout.equals("weight-only");
        if (!(weightOnly ? Int8Bf16Panels.supported() : LlmInt8Panels.supported())) {
            throw new IllegalStateException(layout + " panels need CPU features this machine lacks");
        }
        type = dtype.equals("bfloat16") ? ScalarType.BFloat16 : ScalarType.Float;
        try (Tensor values = torch.randint(-127, 128, new long[]{VOCAB, HIDDEN}).to(ScalarType.Char)) {
            panels = weightOnly ? Int8Bf16Panels.pack(values) : LlmInt8Panels.pack(values);
        }
        scales = torch.rand(VOCAB).mul(new org.bytedeco.pytorch.Scalar(0.01));
        scaleColumn = scales.unsqueeze(1);
        Random r = new Random(3);
        ids = new Tensor[ID_SETS];
        for (int i = 0; i < ID_SETS; i++) {
            long[] set = new long[rows];
            for (int b = 0; b < rows; b++) set[b] = (long) (r.nextDouble() * VOCAB);
            ids[i] = Tensors.fromLongs(set, rows, 1);
        }
    }

    @Benchmark
    public long lookup() {
        Tensor at = ids[next++ % ID_SETS];
        try (PointerScope scope = new PointerScope()) {
            Tensor out = implementation.equals("NATIVE") ? nativeRows(at) : libtorchChain(at);
            return out.numel();
        }
    }

    private Tensor nativeRows(Tensor at) {
        return layout.equals("weight-only") ? Int8Bf16Panels.rows(panels, scales, at, type) : LlmInt8Panels.rows(panels, scales, at, type);
    }

    /** What Int8Panels.lookup did before the native rows: the same numbers by five libtorch ops. */
    private Tensor libtorchChain(Tensor at) {
        Tensor v = layout.equals("weight-only") ? Int8Bf16Panels.values(panels, at) : LlmInt8Panels.values(panels, at);
        return v.to(type).mul(torch.embedding(scaleColumn, at).to(type));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : ids) t.close();
        scaleColumn.close();
        scales.close();
        panels.close();
    }
}
