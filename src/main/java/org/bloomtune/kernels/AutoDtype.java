package org.bloomtune.kernels;

import org.bloomtune.tensor.CpuFeatures;
import org.bloomtune.tensor.DType;

import java.util.Locale;

/**
 * The compute dtype {@code --dtype auto} takes: bfloat16 where this CPU multiplies bfloat16 faster
 * than float32 — AVX512_BF16 whose {@code vdpbf16ps} the bfloat16 GEMM measured at full rate
 * ({@link Bf16Products#PAIRS}: twice the float32 FMAs' multiply-adds, as on AMD's Zen 4) — and
 * float32 elsewhere: where {@code vdpbf16ps} runs at half that rate (Intel's AVX512_BF16 cores
 * without AMX) the bfloat16 products run as widened float32 FMAs and a bfloat16 step is no faster
 * than a float32 one, at lower precision (benchmarks/FINDINGS.md). The soft prompt and its
 * optimizer state stay float32 whatever the compute dtype; on CUDA the choice is left to the user
 * (not measured here).
 */
public final class AutoDtype {
    private AutoDtype() {}

    /** {@code auto}'s dtype for {@code device} ({@code cpu}, {@code cuda[:N]}, or null for the CPU). */
    public static DType compute(String device) {
        boolean cpu = device == null || device.toLowerCase(Locale.ROOT).startsWith("cpu");
        return cpu && CpuFeatures.nativeBf16() && Bf16Gemm.supported() && Bf16Gemm.products() == Bf16Products.PAIRS ? DType.BF16 : DType.F32;
    }
}
