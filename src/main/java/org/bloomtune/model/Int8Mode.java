package org.bloomtune.model;

import java.util.Locale;

/** How 8-bit linear layers compute their forward pass. */
public enum Int8Mode {
    /** Full-precision weights: no quantization. */
    NONE,
    /** int8 weights × float activations: libtorch's {@code _weight_int8pack_mm} (CPU). */
    WEIGHT_ONLY,
    /**
     * LLM.int8 (bitsandbytes): activations quantized per row to int8, int8 × int8 → int32 through
     * {@code _int_mm} (CPU), with the outlier columns (|x| ≥ threshold) computed in floating point.
     */
    LLM_INT8,
    /** Dequantize the int8 weight and multiply in floating point: the fallback for any device. */
    DEQUANTIZE;

    public static Int8Mode parse(String text) {
        try {
            return valueOf(text.toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown int8 mode '" + text + "' (expected none, weight-only, llm-int8 or dequantize)");
        }
    }
}
