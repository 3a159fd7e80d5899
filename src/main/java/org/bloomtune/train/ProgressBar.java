package org.bloomtune.train;

import java.io.PrintStream;
import java.util.Locale;

/** One console line, rewritten in place: step, bar, loss, tokens/s, ETA. */
final class ProgressBar {
    private final PrintStream out;
    private final int total;
    private final long start = System.nanoTime();

    ProgressBar(PrintStream out, int total) {
        this.out = out;
        this.total = total;
    }

    void update(int step, double loss, double tokensPerSecond, int firstStep) {
        double elapsed = (System.nanoTime() - start) / 1e9;
        double perStep = elapsed / Math.max(1, step - firstStep);
        long eta = Math.round(perStep * (total - step));
        int width = 30;
        int filled = (int) Math.round(width * (double) step / total);
        out.printf(Locale.ROOT, "\rstep %d/%d [%s%s] loss %.4f  %.0f tok/s  ETA %dm%02ds", step, total,
                "=".repeat(filled), " ".repeat(width - filled), loss, tokensPerSecond, eta / 60, eta % 60);
        if (step == total) out.println();
        out.flush();
    }
}
