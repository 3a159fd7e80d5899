package org.bloomtune.kernels;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every row runs exactly once, on the caller and the helper threads, whoever else calls at the same time; a part's failure reaches the caller. */
class RowSplitTest {
    /** Runs rows [0, rows) in {@code parts} and returns how often each row ran. */
    private static AtomicIntegerArray split(long rows, int parts) {
        AtomicIntegerArray ran = new AtomicIntegerArray((int) rows);
        RowSplit.run("counting", rows, parts, (from, count) -> {
            for (long r = from; r < from + count; r++) ran.incrementAndGet((int) r);
        });
        return ran;
    }

    private static void assertOnce(AtomicIntegerArray ran) {
        for (int r = 0; r < ran.length(); r++) assertEquals(1, ran.get(r), "row " + r);
    }

    @Test
    void everyRowRunsOnceForAnyNumberOfParts() {
        for (int parts = 1; parts <= 5; parts++) {
            for (long rows : new long[]{1, 3, 4, 1000, 1001}) assertOnce(split(rows, parts));
        }
    }

    @Test
    void callersAtTheSameTimeEachGetTheirRows() throws Exception {
        try (ExecutorService callers = Executors.newFixedThreadPool(4)) {
            List<Future<?>> done = new ArrayList<>();
            for (int c = 0; c < 4; c++) done.add(callers.submit(() -> {
                for (int i = 0; i < 500; i++) assertOnce(split(257 + i % 7, 2 + i % 3));
            }));
            for (Future<?> f : done) f.get();
        }
    }

    @Test
    void aFailingPartFailsTheCallNamingTheKernelAndTheHelpersCarryOn() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> RowSplit.run("bt_broken", 100, 2, (from, count) -> {
            if (from > 0) throw new ArithmeticException("part " + from);
        }));
        assertTrue(e.getMessage().contains("bt_broken"), e.getMessage());
        assertEquals("part 50", e.getCause().getMessage(), "the helper's part failed, and its error is the cause");
        assertOnce(split(100, 2));
    }

    @Test
    void aSplitRightAfterAnotherFindsTheHelperFree() {
        // The helper frees its slot before the caller learns its part is done, so a caller that splits again at once
        // hands the next part over instead of running it itself; freed after, some of these splits ran alone.
        Thread caller = Thread.currentThread();
        int alone = 0;
        for (int i = 0; i < 20_000; i++) {
            AtomicBoolean byCaller = new AtomicBoolean();
            RowSplit.run("counting", 2, 2, (from, count) -> {
                if (from > 0 && Thread.currentThread() == caller) byCaller.set(true);
            });
            if (byCaller.get()) alone++;
        }
        assertEquals(0, alone, "splits whose second part the caller ran itself");
    }

    @Test
    void claimedChunksRunEachUnitOnceAndAFasterThreadTakesWhatASlowerLeft() {
        for (int parts = 2; parts <= 4; parts++) {
            for (long units : new long[]{parts, 63, 64 * parts + 5, 7840}) {
                AtomicIntegerArray ran = new AtomicIntegerArray((int) units);
                RowSplit.claimed("counting", units, parts, (from, count) -> {
                    for (long u = from; u < from + count; u++) ran.incrementAndGet((int) u);
                });
                assertOnce(ran);
            }
        }
        // The caller owns the first share and is held in its first chunk until the helper has taken a chunk of that share
        // (at most ten seconds: a split whose helper never takes one fails below, however the threads are scheduled). The
        // helper finishes its own share and takes the rest of the caller's from its back end, so what it ran of that share
        // is a run of units ending at the share's last.
        Thread caller = Thread.currentThread();
        CountDownLatch taken = new CountDownLatch(1);
        AtomicBoolean held = new AtomicBoolean();
        AtomicIntegerArray ranByHelper = new AtomicIntegerArray(640);
        AtomicIntegerArray ran = new AtomicIntegerArray(640);
        RowSplit.claimed("counting", 640, 2, (from, count) -> {
            boolean helper = Thread.currentThread() != caller;
            if (!helper && !held.getAndSet(true)) taken.await(10, TimeUnit.SECONDS);
            for (long u = from; u < from + count; u++) {
                ran.incrementAndGet((int) u);
                if (helper) ranByHelper.incrementAndGet((int) u);
            }
            if (helper && from < 320) taken.countDown();
        });
        assertOnce(ran);
        int firstTaken = 320;
        while (firstTaken > 0 && ranByHelper.get(firstTaken - 1) == 1) firstTaken--;
        assertTrue(firstTaken < 320, "the helper took chunks of the caller's share");
        for (int u = 0; u < firstTaken; u++) assertEquals(0, ranByHelper.get(u), "only from its back end: unit " + u);
    }
}
