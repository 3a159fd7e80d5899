package org.bloomtune.tensor;

import java.util.Locale;

/**
 * Which of BloomTune's native kernels a process uses, from the system property
 * {@value #PROPERTY} (as libtorch's {@code ATEN_CPU_CAPABILITY} narrows its own): every kernel this
 * CPU supports ({@code all}, the default); at most AVX2 ({@code avx2}: what a CPU without AVX-512
 * gets); only kernels that check for no instruction-set extension ({@code portable}: a CPU without
 * AVX2); or none, the libtorch op chains a platform without the library runs ({@code none}). For
 * comparing a result with and without the kernels, and for testing the paths other CPUs take.
 */
public enum KernelSelection {
    ALL(2), AVX2(1), PORTABLE(0), NONE(0);

    public static final String PROPERTY = "bloomtune.kernels";

    /** The widest instruction set the library's checks may report (native/isa_cap.h's levels). */
    final int isaCap;

    KernelSelection(int isaCap) { this.isaCap = isaCap; }

    /** This process's selection from {@value #PROPERTY}; the kernels read it once, when they are first bound. */
    public static KernelSelection current() { return parse(System.getProperty(PROPERTY)); }

    /** {@code value} (any case; null means {@code all}); an unknown value is an error naming the property. */
    public static KernelSelection parse(String value) {
        if (value == null) return ALL;
        for (KernelSelection s : values()) if (s.name().equalsIgnoreCase(value.strip())) return s;
        throw new IllegalArgumentException("system property " + PROPERTY + " is '" + value + "'; expected all, avx2, portable or none");
    }

    @Override
    public String toString() { return name().toLowerCase(Locale.ROOT); }
}
