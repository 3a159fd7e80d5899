package org.bloomtune.generate;

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
 */
public record GenerationStats(int rows, long prefillPositions, double prefillSeconds, int decodeSteps, double decodeSeconds) {

    /** Seconds per decode step (one new token for every row); NaN without decode steps. */
    public double secondsPerDecodeStep() { return decodeSteps == 0 ? Double.NaN : decodeSeconds / decodeSteps; }

    /** One line for stderr. */
    public String summary() {
        return String.format(Locale.ROOT, "prefill %d × %d positions in %.1f ms (%.2f ms/position); decode %d steps in %.1f ms: %.2f ms/step "
                        + "(batch %d, %.1f tokens/s)",
                rows, prefillPositions, 1e3 * prefillSeconds, 1e3 * prefillSeconds / Math.max(1, rows * prefillPositions),
                decodeSteps, 1e3 * decodeSeconds, 1e3 * secondsPerDecodeStep(), rows,
                decodeSteps == 0 ? 0.0 : rows * decodeSteps / decodeSeconds);
    }
}
