package org.bloomtune.kernels;

import java.util.Locale;

/**
 * How native/bf16_gemm.c multiplies bfloat16: {@link #PAIRS} by AVX512_BF16's {@code vdpbf16ps} (a
 * pair of products a lane per instruction), {@link #WIDENED} by float32 FMAs on the same numbers
 * widened (exact products, summed in the same order). Which is faster depends on the core: AMD's
 * Zen 4 retires a {@code vdpbf16ps} as fast as an FMA, so pairs do twice the work; Intel's
 * AVX512_BF16 cores without AMX take four FMAs' time for one (half the FLOPs), so widened FMAs do
 * more. The kernel
 * measures both instructions on first use; the system property {@value #PROPERTY} ({@code pairs},
 * {@code widened}, or {@code measured}, the default) overrides that choice for a process.
 */
public enum Bf16Products {
    PAIRS, WIDENED;

    public static final String PROPERTY = "bloomtune.bf16.products";

    /** {@code value} (any case), or null for {@code measured}; an unknown value is an error naming the property. */
    static Bf16Products parse(String value) { return ProductsProperty.parse(Bf16Products.class, PROPERTY, value); }

    /** The kernel's code for this way (bt_bf16_gemm_set_products). */
    int code() { return ordinal(); }

    @Override
    public String toString() { return name().toLowerCase(Locale.ROOT); }
}
