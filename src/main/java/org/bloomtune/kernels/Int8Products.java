package org.bloomtune.kernels;

import java.util.Locale;

/**
 * How the weight-only int8 panels ({@link Int8Bf16Panels}, {@link Int8F32Panels}) multiply:
 * {@link #FLOATS} by float32 FMAs on each weight widened to float32; {@link #DIGITS} by
 * {@code vpdpbusd} on the int8 weights and x written as three int8 digits a value on a
 * power-of-two step below each row's largest |x| (native/int8_digits_panels.c) — exact integer
 * sums, x held to 2⁻²² of that largest value (every bfloat16 within 2¹⁴ of it exactly). The default
 * is chosen per dtype of x: float32 rows by digits wherever the CPU has AVX512-VNNI (widening every
 * weight to float32 costs more than three {@code vpdpbusd} a word on Intel's and AMD's cores),
 * bfloat16 rows by digits only where the bfloat16 products are {@link Bf16Products#WIDENED} (an
 * Intel core, whose {@code vpdpbusd} retires four times the FMAs' multiply-adds) and by floats where
 * {@code vdpbf16ps} is fast; the system property {@value #PROPERTY} ({@code floats}, {@code digits},
 * or {@code measured}, the default) sets one way for both dtypes of a process.
 */
public enum Int8Products {
    FLOATS, DIGITS;

    public static final String PROPERTY = "bloomtune.int8.products";

    /** {@code value} (any case), or null for {@code measured}; an unknown value is an error naming the property. */
    static Int8Products parse(String value) { return ProductsProperty.parse(Int8Products.class, PROPERTY, value); }

    /** The kernel's code for this way (bt_int8_weight_set_products). */
    int code() { return ordinal(); }

    @Override
    public String toString() { return name().toLowerCase(Locale.ROOT); }
}
