package org.bloomtune.bench;

import org.bloomtune.generate.TokenListener;

import java.util.Arrays;

/**
 * A generation's step times, read from when each of its first row's tokens arrives: the gap
 * between two tokens is one decode step, the Java between them included. Beside the mean and
 * median of the generation's own stats, they count the steps held up from outside (the VMs these
 * figures are taken on stop a vCPU for a tenth of a second now and then: benchmarks/FINDINGS.md).
 */
final class StepClock implements TokenListener {
    private final long[] arrivals;
    private int count;

    StepClock(int tokens) { arrivals = new long[tokens]; }

    @Override
    public void onToken(int row, long token) {
        if (row == 0 && count < arrivals.length) arrivals[count++] = System.nanoTime();
    }

    /** Each decode step's milliseconds: the gaps between consecutive tokens of the first row. */
    double[] stepMillis() {
        double[] steps = new double[Math.max(0, count - 1)];
        for (int i = 1; i < count; i++) steps[i - 1] = (arrivals[i] - arrivals[i - 1]) / 1e6;
        return steps;
    }

    /** How many decode steps took at least {@code millis}. */
    long stepsAtLeast(double millis) {
        return Arrays.stream(stepMillis()).filter(v -> v >= millis).count();
    }
}
