package org.bloomtune.bench;

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

import java.util.concurrent.TimeUnit;

/**
 * One prompt-tuning step — forward and backward to a 10-token soft prompt — at seq 256, per row of
 * {@link StepFixture}. The rows are listed rather than crossed, so the expensive bloom-560m
 * combinations are the informative ones.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
public class StepBenchmark {
    @Param({
            "bloom-560m fp32 AUTOGRAD 4 all eager",
            "bloom-560m fp32 AUTOGRAD 4 all sdpa",
            "bloom-560m fp32 RECOMPUTE_BLOCKS 4 all eager",
            "bloom-560m fp32 AUTOGRAD 4 response eager",
            "bloom-560m fp32 RECOMPUTE_BLOCKS 4 response eager",
            "bloom-560m fp32 AUTOGRAD 1 all eager",
            "bloom-560m bf16 AUTOGRAD 4 all eager",
            "bloom-560m bf16-int8-weight-only RECOMPUTE_BLOCKS 4 all eager",
            "bloom-560m int8-llm-int8 RECOMPUTE_BLOCKS 4 all eager",
            "tiny fp32 AUTOGRAD 1 all eager",
            "tiny fp32 AUTOGRAD 4 all eager",
            "tiny fp32 RECOMPUTE_BLOCKS 4 all eager",
            "tiny bf16 AUTOGRAD 4 all eager",
            "tiny int8-llm-int8 RECOMPUTE_BLOCKS 4 all eager",
    })
    public String row;

    private StepFixture fixture;

    private double gemmGflops;

    /**
     * Peak resident memory of the step above the loaded model, the share of CPU time the hypervisor
     * took meanwhile (CpuSteal) in tenths of a percent, and the GEMM peak of the row's compute dtype
     * taken just before the step (MFLOP/s).
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Memory {
        public long stepPeakMiB;
        public long stealPerMille;
        public long gemmMflops;
    }

    @Setup(Level.Trial)
    public void setUp() { fixture = new StepFixture(row); }

    /**
     * The peak the step's MFU divides by, measured beside each step rather than once at the start of
     * a Report: this VM's speed moves between spells within minutes (benchmarks/FINDINGS.md).
     */
    @Setup(Level.Iteration)
    public void measurePeak() { gemmGflops = DecodeProbe.gemmRate(Modes.peakDtype(StepFixture.Row.parse(row).mode())); }

    @Benchmark
    public float step(Memory memory) {
        long[] before = CpuSteal.sample();
        float loss = fixture.step();
        memory.stealPerMille = Math.round(10 * CpuSteal.percent(before, CpuSteal.sample()));
        memory.stepPeakMiB = fixture.stepPeakMiB;
        memory.gemmMflops = Math.round(gemmGflops * 1e3);
        return loss;
    }

    @TearDown(Level.Trial)
    public void tearDown() { fixture.close(); }
}
