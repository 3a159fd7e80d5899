package org.bloomtune.bench;

import org.bloomtune.tensor.ProcessMemory;
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
 * The memory row: one LLM.int8 prompt-tuning step of a bloom-1b4-zh-shaped model at 4 × 256 by
 * the recomputing reverse pass, the whole process's peak resident memory recorded (target: at
 * most 2.5 GB). One measured step — it is about memory, and a step takes minutes on 2 cores.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 0)
@Measurement(iterations = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
public class LargeStepBenchmark {
    @Param({"bloom-1b4-zh int8-llm-int8 RECOMPUTE_BLOCKS 4 all eager"})
    public String row;

    private StepFixture fixture;

    /** Peak resident memory of the step above the loaded model, and of the whole process. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Memory {
        public long stepPeakMiB;
        public long processPeakMiB;
        public long loadedMiB;
    }

    @Setup(Level.Trial)
    public void setUp() {
        ProcessMemory.lowMemory();                         // --low-memory: this row is about memory
        fixture = new StepFixture(row);
    }

    @Benchmark
    public float step(Memory memory) {
        float loss = fixture.step();
        memory.stepPeakMiB = fixture.stepPeakMiB;
        memory.loadedMiB = fixture.loadedMiB();
        memory.processPeakMiB = fixture.loadedMiB() + fixture.stepPeakMiB;
        return loss;
    }

    @TearDown(Level.Trial)
    public void tearDown() { fixture.close(); }
}
