package org.bloomtune.io;

import java.io.PrintStream;
import java.util.Locale;

/**
 * Progress of a long loop: step, bar, loss, tokens/s, ETA. On a terminal one line is redrawn in
 * place; into a file or a pipe (a log) it prints a plain line every twentieth of the way, so a log
 * never fills with carriage returns.
 */
public final class ProgressBar {
    private static final int LINES_WHEN_LOGGING = 20;

    private final PrintStream out;
    private final int total;
    private final boolean redraw;
    private final long start = System.nanoTime();
    private int lastPrinted = -1;

    public ProgressBar(PrintStream out, int total, boolean redraw) {
        this.out = out;
        this.total = Math.max(1, total);
        this.redraw = redraw;
    }

    /** A bar that redraws in place only when {@code out} is the process's stdout or stderr and that goes to a terminal. */
    public static ProgressBar forStream(PrintStream out, int total) {
        int fd = out == System.out ? 1 : out == System.err ? 2 : -1;
        return new ProgressBar(out, total, fd > 0 && isTerminal(fd));
    }

    // Linux names a terminal's file /dev/pts/N or /dev/ttyN; elsewhere ask the JDK, which knows about stdout only.
    private static boolean isTerminal(int fd) {
        try {
            String target = java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/" + fd)).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (java.io.IOException | UnsupportedOperationException e) {
            java.io.Console console = System.console();
            return fd == 1 && console != null && console.isTerminal();
        }
    }

    public void update(int step, double loss, double tokensPerSecond, int firstStep) {
        draw("step", step, firstStep, String.format(Locale.ROOT, "loss %.4f  %.0f tok/s", loss, tokensPerSecond));
    }

    /** {@code done} of the total items are finished; {@code detail} follows the bar. */
    public void update(int done, String detail) {
        draw("", done, 0, detail);
    }

    private void draw(String what, int done, int first, String detail) {
        if (!redraw && !dueForLine(done)) return;
        double elapsed = (System.nanoTime() - start) / 1e9;
        double perItem = elapsed / Math.max(1, done - first);
        long eta = Math.round(perItem * (total - done));
        int width = 30;
        int filled = (int) Math.round(width * Math.min(1.0, (double) done / total));
        String line = String.format(Locale.ROOT, "%s%d/%d [%s%s] %s  ETA %dm%02ds", what.isEmpty() ? "" : what + " ", done, total,
                "=".repeat(filled), " ".repeat(width - filled), detail, eta / 60, eta % 60);
        if (redraw) {
            out.print("\r" + line);
            if (done >= total) out.println();
        } else {
            out.println(line);
        }
        out.flush();
        lastPrinted = done;
    }

    private boolean dueForLine(int done) {
        int every = Math.max(1, total / LINES_WHEN_LOGGING);
        return lastPrinted < 0 || done >= total || done - lastPrinted >= every;
    }
}
