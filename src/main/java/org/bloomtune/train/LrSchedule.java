package org.bloomtune.train;

import java.util.Locale;

/** Linear warmup from 0 to the peak rate, then linear or cosine decay to 0 at the last step. */
public record LrSchedule(double peak, int warmupSteps, int totalSteps, Decay decay) {
    public enum Decay {
        LINEAR, COSINE, CONSTANT;

        public static Decay parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown schedule '" + s + "' (expected linear, cosine or constant)");
            }
        }
    }

    public LrSchedule {
        if (!(peak > 0) || !Double.isFinite(peak)) throw new IllegalArgumentException("lr must be a positive number, got " + peak);
        if (warmupSteps < 0 || totalSteps < 1) throw new IllegalArgumentException("warmup must be >= 0 and total steps >= 1");
    }

    /** The rate of optimizer step {@code step} (1-based). */
    public double rate(int step) {
        if (step <= warmupSteps) return peak * step / Math.max(1, warmupSteps);
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        progress = Math.min(1, progress);
        return switch (decay) {
            case LINEAR -> peak * (1 - progress);
            case COSINE -> peak * 0.5 * (1 + Math.cos(Math.PI * progress));
            case CONSTANT -> peak;
        };
    }
}
