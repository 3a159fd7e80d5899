package org.bloomtune.model;

/**
 * 8-bit weights: the mode, and for LLM.int8 the activation magnitude from which a column counts
 * as an outlier and stays in floating point (bitsandbytes' default: 6.0; 0 = no outliers).
 */
public record Int8Options(Int8Mode mode, double threshold) {
    public static final double DEFAULT_THRESHOLD = 6.0;
    public static final Int8Options NONE = new Int8Options(Int8Mode.NONE, DEFAULT_THRESHOLD);

    public Int8Options {
        if (mode == null) throw new IllegalArgumentException("int8 mode must be given");
        if (!(threshold >= 0) || !Double.isFinite(threshold)) {
            throw new IllegalArgumentException("int8 outlier threshold must be a finite number >= 0, got " + threshold);
        }
    }

    public static Int8Options of(Int8Mode mode) { return new Int8Options(mode, DEFAULT_THRESHOLD); }

    public boolean enabled() { return mode != Int8Mode.NONE; }
}
