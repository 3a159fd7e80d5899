package org.bloomtune.generate;

import java.util.Arrays;
import java.util.Locale;

/**
 * Where a generation's time went: the prefill (one forward over every prompt position) and the
 * decode steps (one position per row each), timed separately because they are bound by different
 * things — the prefill by arithmetic, a decode step by reading every weight once.
 *
 * @param rows             batch rows
 * @param prefillPositions positions per row in the prefill (padding and soft prompt included)
 * @param prefillSeconds   the prefill forward, through the first token's pick
 * @param decodeSteps      forwards after the prefill
 * @param decodeSeconds    their time, picks included
 * @param medianDecodeStepSeconds the median of the decode steps' own times (what the token listener
 *                         did between them left out); NaN without decode steps. Where the mean is
 *                         what a caller waited, the median is what a step takes: on a shared or
 *                         virtual machine a few steps held up from outside (a vCPU stopped by the
 *                         host for a tenth of a second) move the mean and not the median.
 */
public record GenerationStats(int rows, long prefillPositions, double prefillSeconds, int decodeSteps, double decodeSeconds,
                              double medianDecodeStepSeconds) {

    /** Seconds per decode step (one new token for every row); NaN without decode steps. */
    public double secondsPerDecodeStep() { return decodeSteps == 0 ? Double.NaN : decodeSeconds / decodeSteps; }

    /** The median of the first {@code count} of {@code nanos}, in seconds; NaN when count is 0. */
    static double medianSeconds(long[] nanos, int count) {
        if (count == 0) return Double.NaN;
        long[] sorted = Arrays.copyOf(nanos, count);
        Arrays.sort(sorted);
        int mid = count / 2;
        return (count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0) / 1e9;
    }

    /** One line for stderr. */
    public String summary() {
        return String.format(Locale.ROOT, "prefill %d × %d positions in %.1f ms (%.2f ms/position); decode %d steps in %.1f ms: %.2f ms/step, "
                        + "median %.2f (batch %d, %.1f tokens/s)",
                rows, prefillPositions, 1e3 * prefillSeconds, 1e3 * prefillSeconds / Math.max(1, rows * prefillPositions),
                decodeSteps, 1e3 * decodeSeconds, 1e3 * secondsPerDecodeStep(), 1e3 * medianDecodeStepSeconds, rows,
                decodeSteps == 0 ? 0.0 : rows * decodeSteps / decodeSeconds);
    }
}
