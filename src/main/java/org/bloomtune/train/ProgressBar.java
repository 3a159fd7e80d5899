package org.bloomtune.train;

import java.io.PrintStream;
import java.util.Locale;

/** One console line, rewritten in place: step, bar, loss, tokens/s, ETA. */
public final class ProgressBar {
    private final PrintStream out;
    private final int total;
    private final long start = System.nanoTime();

    public ProgressBar(PrintStream out, int total) {
        this.out = out;
        this.total = total;
    }

    void update(int step, double loss, double tokensPerSecond, int firstStep) {
        draw("step", step, firstStep, String.format(Locale.ROOT, "loss %.4f  %.0f tok/s", loss, tokensPerSecond));
    }

    /** {@code done} of the total items are finished; {@code detail} follows the bar. */
    public void update(int done, String detail) {
        draw("", done, 0, detail);
    }

    private void draw(String what, int done, int first, String detail) {
        double elapsed = (System.nanoTime() - start) / 1e9;
        double perItem = elapsed / Math.max(1, done - first);
        long eta = Math.round(perItem * (total - done));
        int width = 30;
        int filled = (int) Math.round(width * (double) done / total);
        out.printf(Locale.ROOT, "\r%s%d/%d [%s%s] %s  ETA %dm%02ds", what.isEmpty() ? "" : what + " ", done, total,
                "=".repeat(filled), " ".repeat(width - filled), detail, eta / 60, eta % 60);
        if (done == total) out.println();
        out.flush();
    }
}
