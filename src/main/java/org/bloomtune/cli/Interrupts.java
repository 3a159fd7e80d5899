package org.bloomtune.cli;

import org.bloomtune.tensor.ProcessExit;
import sun.misc.Signal;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * SIGINT, SIGTERM and SIGHUP for a CLI process. The JVM's own handling runs the C exit handlers
 * while the main thread may be inside libtorch, and that hangs the process or crashes it
 * ({@link ProcessExit}). Here the first signal asks the command to stop at its next safe point, if
 * it registered one ({@code train} finishes its step and checkpoints it, {@code serve} drains its
 * requests); otherwise, and on a second signal, the process ends at once with 128 + the signal's
 * number, the code a shell gives a death by that signal.
 */
final class Interrupts {
    private static final String[] SIGNALS = {"INT", "TERM", "HUP"};
    private static final AtomicInteger first = new AtomicInteger();
    private static volatile Runnable stop;

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
    static void stopWith(Runnable safeStop) { stop = safeStop; }

    /** 128 + the first signal's number, or 0 when none came. */
    static int exitCode() {
        int n = first.get();
        return n == 0 ? 0 : 128 + n;
    }

    private static void received(Signal s) {
        Runnable safeStop = stop;
        if (first.compareAndSet(0, s.getNumber()) && safeStop != null) {
            System.err.println("bloomtune: SIG" + s.getName() + ": stopping (send it again to stop at once)");
            safeStop.run();
            return;
        }
        ProcessExit.now(128 + s.getNumber());
    }
}
