package org.bloomtune.kernels;

import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Helper threads that stay awake between native kernel calls. A decode step calls a row kernel
 * about a hundred times, each on a few megabytes that take a fraction of a millisecond to read;
 * handing half of each call to a parked fork-join worker costs a wake-up per call, as much as the
 * call itself (benchmarks/FINDINGS.md). A helper here spins for {@link #SPIN_NANOS} after each part
 * before it parks, so calls in quick succession find it running; when it is busy (another caller)
 * the caller runs the part itself.
 */
final class KernelThreads {
    /** How long a helper spins for the next part before it parks: longer than the gap between a decode step's kernel calls. */
    static final long SPIN_NANOS = 200_000;

    /** One range of a kernel call handed to a helper. */
    static final class Part {
        private final RowSplit.Range range;
        private final long from;
        private final long count;
        private final Thread caller = Thread.currentThread();
        private volatile boolean done;
        private Throwable error;

        Part(RowSplit.Range range, long from, long count) {
            this.range = range;
            this.from = from;
            this.count = count;
        }

        /** Runs the range on this thread and marks the part done (a part no helper took). */
        void run() {
            work();
            finish();
        }

        private void work() {
            try {
                if (count > 0) range.run(from, count);
            } catch (Throwable t) {
                error = t;
            }
        }

        private void finish() {
            done = true;
            LockSupport.unpark(caller);
        }

        /** Waits for the helper to finish this part (spinning first: the caller's own part took as long); its error, or null. */
        Throwable await() {
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (!done) {
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.parkNanos(this, SPIN_NANOS);
            }
            return error;
        }
    }

    private static final class Helper extends Thread {
        final AtomicReference<Part> slot = new AtomicReference<>();

        Helper(int index) {
            super("bloomtune-kernel-" + index);
            setDaemon(true);
        }

        @Override
        public void run() {
            long spinUntil = System.nanoTime();
            while (true) {
                Part p = slot.get();
                if (p == null) {
                    if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                    else LockSupport.park(this);
                    continue;
                }
                p.work();
                // Free before the caller learns the part is done: a caller that offers its next part at once finds the helper free.
                slot.set(null);
                p.finish();
                spinUntil = System.nanoTime() + SPIN_NANOS;
            }
        }

        boolean offer(Part p) {
            if (!slot.compareAndSet(null, p)) return false;
            LockSupport.unpark(this);
            return true;
        }
    }

    private static volatile Helper[] helpers = new Helper[0];

    private KernelThreads() {}

    /** Hands {@code part} to the {@code index}-th helper (started on first use); false when that helper is busy. */
    static boolean offer(int index, Part part) {
        Helper[] started = helpers;
        return (index < started.length ? started[index] : start(index)).offer(part);
    }

    private static synchronized Helper start(int index) {
        if (index >= helpers.length) {
            Helper[] more = java.util.Arrays.copyOf(helpers, index + 1);
            for (int i = helpers.length; i < more.length; i++) {
                more[i] = new Helper(i);
                more[i].start();
            }
            helpers = more;
        }
        return helpers[index];
    }
}
