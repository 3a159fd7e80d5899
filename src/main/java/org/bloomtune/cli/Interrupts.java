package org.bloomtune.cli;

import org.bloomtune.tensor.ProcessExit;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * SIGINT, SIGTERM and SIGHUP for a CLI process. The JVM's own handling runs the C exit handlers
 * while the main thread may be inside libtorch, and that hangs the process or crashes it
 * ({@link ProcessExit}). Here the first signal asks the command to stop at its next safe point, if
 * it registered one ({@code train} finishes its step and checkpoints it, {@code serve} drains its
 * requests); a second signal ends it at once — through the command's own second action where it
 * has one (the launcher kills its ranks first), else, and on any later signal, by ending the
 * process with 128 + the first signal's number, the code a shell gives a death by that signal.
 */
final class Interrupts {
    private static final String[] SIGNALS = {"INT", "TERM", "HUP"};
    private static final AtomicInteger first = new AtomicInteger();
    private static final AtomicInteger signals = new AtomicInteger();
    private static volatile Runnable stop;
    private static volatile Runnable stopNow;

    private Interrupts() {}

    /** Takes the signals over for this process (a signal ignored at start, as under {@code nohup}, stays ignored). */
    static void install() {
        for (String name : SIGNALS) {
            try {
                Signal.handle(new Signal(name), Interrupts::received);
            } catch (IllegalArgumentException e) {
                // not on this platform, or kept by the JVM (-Xrs): its default stands
            }
        }
    }

    /** From now on the first signal runs {@code safeStop} (quickly: it only asks) instead of ending the process. */
    static void stopWith(Runnable safeStop) { stopWith(safeStop, null); }

    /** As {@link #stopWith(Runnable)}, and a second signal runs {@code stopAtOnce} (a third ends the process). */
    static void stopWith(Runnable safeStop, Runnable stopAtOnce) {
        stopNow = stopAtOnce;
        stop = safeStop;
    }

    /** Leaves {@code names} (e.g. "INT") to someone else: a launcher that passes its own signal on as SIGTERM. */
    static void ignore(String... names) {
        for (String name : names) {
            try {
                Signal.handle(new Signal(name), SignalHandler.SIG_IGN);
            } catch (IllegalArgumentException e) {
                // as in install()
            }
        }
    }

    /** The exit code of a run stopped by SIGTERM (128 + 15), also of a rank stopped because another rank was signalled. */
    static final int TERMINATED = 143;

    /** 128 + the first signal's number, or 0 when none came. */
    static int exitCode() {
        int n = first.get();
        return n == 0 ? 0 : 128 + n;
    }

    private static void received(Signal s) {
        first.compareAndSet(0, s.getNumber());
        int count = signals.incrementAndGet();
        Runnable action = count == 1 ? stop : count == 2 ? stopNow : null;
        if (action == null) {
            ProcessExit.now(exitCode());
            return;
        }
        System.err.println("bloomtune: SIG" + s.getName() + (count == 1 ? ": stopping (send it again to stop at once)" : ": stopping at once"));
        action.run();
    }
}
