package org.bloomtune.bench;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
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
 * One prompt-tuning step (forward + backward to a 10-token soft prompt, labels on every token) on
 * the bloom-560m shape at 4 × 256, fp32 — the peer's measured configuration — by each reverse pass.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class StepBenchmark {
    @Param({"AUTOGRAD", "RECOMPUTE_BLOCKS"})
    public ReversePass pass;

    @Param({"bloom-560m"})
    public String shape;

    @Param({"4"})
    public int batch;

    @Param({"256"})
    public int seq;

    @Param({"10"})
    public int virtualTokens;

    private BloomModel model;
    private SoftPrompt prompt;
    private Tensor ids;
    private long loadedRss;

    /** Peak resident memory of the step above the loaded model. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Memory {
        public long stepPeakMiB;
    }

    @Setup(Level.Trial)
    public void setUp() {
        model = BloomModel.load(Checkpoints.random(shape));
        prompt = SoftPrompt.random(virtualTokens, model.config().hiddenSize(), 0);
        Random r = new Random(1);
        long[] values = new long[batch * seq];
        for (int i = 0; i < values.length; i++) values[i] = r.nextInt(model.config().vocabSize());
        ids = Tensors.fromLongs(values, batch, seq);
        loadedRss = ProcessMemory.residentBytes();
    }

    @Benchmark
    public float step(Memory memory) {
        ProcessMemory.resetPeak();
        prompt.zeroGrad();
        float loss;
        try (PointerScope scope = new PointerScope()) {
            loss = PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, null, ids), pass);
        }
        memory.stepPeakMiB = (ProcessMemory.peakResidentBytes() - loadedRss) >> 20;
        return loss;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ids.close();
        prompt.close();
        model.close();
    }
}
