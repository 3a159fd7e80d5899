package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@link DecodeBlocksKernel} checks before an address goes to C: a table whose linears do not
 * chain, and a step whose tensors do not fit the table (the numbers the native step computes are
 * {@code DecodeBlocksTest}'s); and how a thread of the native step waits for a partner that does
 * not come.
 */
class DecodeBlocksKernelTest {
    static final long H = 64, HEADS = 4, ROWS = 2, PAST = 3, CAPACITY = 8;

    @Test
    void aTableWhoseLinearsDoNotChainIsRefusedNamingTheBlockAndLinear() {
        try (Arena arena = Arena.ofConfined()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DecodeBlocksKernel.layers(arena, List.of(layer(H, 2 * H)), null));
            assertTrue(e.getMessage().contains("block 0: linear 1 is 64 → 128, not 64 → 64"), e.getMessage());
        }
    }

    @Test
    void aStepWhoseTensorsDoNotFitTheTableIsRefusedBeforeAnyNativeCall() {
        try (Arena arena = Arena.ofConfined()) {
            DecodeBlocksKernel.Table table = DecodeBlocksKernel.layers(arena, List.of(layer(H, H)), null);
            DecodeBlocksKernel.Shape shape = new DecodeBlocksKernel.Shape(ROWS, H, HEADS, H / HEADS, PAST, CAPACITY, false, false, 1e-5);
            Tensor hidden = torch.zeros(ROWS, H);
            Tensor[] kv = {torch.zeros(ROWS * HEADS, H / HEADS, CAPACITY), torch.zeros(ROWS * HEADS, CAPACITY, H / HEADS)};
            Tensor alibi = torch.zeros(ROWS * HEADS, 1, PAST + 1);
            Tensor masked = torch.zeros(ROWS, 1, 1, PAST + 1).to(torch.ScalarType.Bool);
            Tensor[] scratch = scratch(4 * H);
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(kv), alibi, masked, scratch(3 * H)), "scratch 5");
            Tensor[] oddCopies = scratch(4 * H);
            oddCopies[0] = torch.zeros(ROWS + 1, H);        // the layer norm's copies: a whole number of [rows, H]
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(kv), alibi, masked, oddCopies), "scratch 0");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden.to(torch.ScalarType.BFloat16), List.<Tensor[]>of(kv), alibi, masked, scratch), "hidden");
            refused(() -> DecodeBlocksKernel.run(table, new DecodeBlocksKernel.Shape(ROWS, H, HEADS, H / HEADS, CAPACITY, CAPACITY, false, false, 1e-5),
                    hidden, List.<Tensor[]>of(kv), alibi, masked, scratch), "shape");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(kv), alibi, masked.narrow(3, 0, PAST), scratch), "mask");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.<Tensor[]>of(new Tensor[]{kv[0], kv[0]}), alibi, masked, scratch), "cache buffers");
            refused(() -> DecodeBlocksKernel.run(table, shape, hidden, List.of(), alibi, masked, scratch), "one key and value buffer per block");
        }
    }

    /**
     * A VM's host stops a vCPU that has been busy for a while; the step's other thread then waits for
     * it. Past a few hundred microseconds that wait must halt its own vCPU rather than spin or yield
     * (which keeps it busy), or the stopped one stays off its core for a tenth of a second
     * (benchmarks/FINDINGS.md). A helper entering a step that never becomes ready waits the same way.
     */
    @Test
    void aThreadWaitingForAPartnerThatDoesNotComeHaltsRatherThanSpins() throws Exception {
        assertTrue(DecodeBlocksKernel.available(), "bloomtune-kernels was not built");
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        assertTrue(mx.isCurrentThreadCpuTimeSupported());
        MethodHandle kernel = NativeKernels.bind("bt_decode_blocks", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG));
        try (Arena arena = Arena.ofShared()) {
            MemorySegment step = arena.allocate(DecodeBlocksKernel.STEP_WORDS * 8, 64);      // zeroed: never ready
            AtomicInteger status = new AtomicInteger(1);
            AtomicLong cpuNanos = new AtomicLong(), wallNanos = new AtomicLong();
            Thread helper = new Thread(() -> {
                long cpu = mx.getCurrentThreadCpuTime(), wall = System.nanoTime();
                try {
                    status.set((int) kernel.invokeExact(step, 1L));
                } catch (Throwable t) {
                    throw new AssertionError(t);
                }
                cpuNanos.set(mx.getCurrentThreadCpuTime() - cpu);
                wallNanos.set(System.nanoTime() - wall);
            });
            helper.start();
            Thread.sleep(WAIT_MILLIS);
            ValueLayout.JAVA_LONG.varHandle().setRelease(step, (long) DecodeBlocksKernel.ABANDONED * 8, 1L);
            helper.join(10_000);
            assertFalse(helper.isAlive(), "the waiting thread returned once the step was abandoned");
            assertEquals(-3, status.get(), "an abandoned step's status");
            assertTrue(wallNanos.get() >= WAIT_MILLIS * 900_000L, "waited " + wallNanos.get() / 1e6 + " ms");
            assertTrue(cpuNanos.get() < wallNanos.get() / 4, "busy " + cpuNanos.get() / 1e6 + " ms of a " + wallNanos.get() / 1e6 + " ms wait");
        }
    }

    private static final long WAIT_MILLIS = 400;

    private static void refused(Runnable step, String naming) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, step::run);
        assertTrue(e.getMessage().contains(naming), e.getMessage());
    }

    /** Scratch rows H, 3H, H, H, H wide and the last {@code last} wide. */
    private static Tensor[] scratch(long last) {
        return new Tensor[]{torch.zeros(ROWS, H), torch.zeros(ROWS, 3 * H), torch.zeros(ROWS, H), torch.zeros(ROWS, H), torch.zeros(ROWS, H),
                torch.zeros(ROWS, last)};
    }

    /** A float32 block of width H whose output projection is H → {@code denseOut}. */
    private static DecodeBlocksKernel.Layer layer(long h, long denseOut) {
        Tensor ones = torch.ones(h);
        return new DecodeBlocksKernel.Layer(ones, ones, ones, ones, dense(h, 3 * h), dense(h, denseOut), dense(h, 4 * h), dense(4 * h, h));
    }

    private static RowKernel dense(long in, long out) {
        return RowKernel.dense("bt_f32_rows_linear", torch.zeros(out, in), torch.zeros(out));
    }
}
