package org.bloomtune.model;

import org.bloomtune.kernels.Bf16Gemm;
import org.bloomtune.kernels.Int8RowsLinear;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bloomtune.tensor.shim.AtenShim;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * How an int8 weight multiplies activations when nothing is being recorded for autograd: chosen
 * once, at load, from the {@link Int8Mode}, so no layer decides it again on every call.
 */
@FunctionalInterface
public interface Int8Kernel {

    /** {@code x2d [M, in] · Wᵀ + bias → [M, out]} in x's dtype; {@code bias} [out] may be null. */
    Tensor multiply(Tensor x2d, Int8Weight weight, Tensor bias);

    /** The product without a bias. */
    default Tensor multiply(Tensor x2d, Int8Weight weight) {
        return multiply(x2d, weight, null);
    }

    /**
     * The product without a bias, each row's argmax merged into {@code picks} — by the kernel's
     * threads as they write, where it does so, else from the whole result.
     */
    default Tensor multiplyWithArgmax(Tensor x2d, Int8Weight weight, RowsArgmax.Picks picks) {
        Tensor y = multiply(x2d, weight, null);
        picks.mergeAll(y);
        return y;
    }

    /** The native row kernel {@link #multiply} would call for {@code x2d} (+ bias or null), or null (see {@link Linear#rowKernel}). */
    default RowKernel rowKernel(Tensor x2d, Int8Weight weight, Tensor bias) { return null; }

    /** The kernel of {@code options.mode()}; NONE has none (its weights are not quantized). */
    static Int8Kernel of(Int8Options options) {
        return switch (options.mode()) {
            case WEIGHT_ONLY -> new Int8Kernel() {
                @Override
                public Tensor multiply(Tensor x2d, Int8Weight weight, Tensor bias) { return weightOnly(x2d, weight, bias); }

                @Override
                public Tensor multiplyWithArgmax(Tensor x2d, Int8Weight weight, RowsArgmax.Picks picks) {
                    if (!Int8RowsLinear.applies(x2d, weight.values(), weight.scales())) return Int8Kernel.super.multiplyWithArgmax(x2d, weight, picks);
                    return Int8RowsLinear.forward(x2d, weight.values(), weight.scales(), picks);
                }

                @Override
                public RowKernel rowKernel(Tensor x2d, Int8Weight weight, Tensor bias) {
                    return Int8RowsLinear.rowKernel(x2d, weight.values(), weight.scales(), bias);
                }
            };
            case LLM_INT8 -> LlmInt8.kernel(options.threshold());
            case DEQUANTIZE -> (x, w, bias) -> plusBias(torch.linear(x, w.dequantize(x.scalar_type())), bias);
            case NONE -> throw new IllegalArgumentException("int8 mode NONE has no int8 kernel");
        };
    }

    /** {@code y + bias}, or y without one: an add after the product, as the unfused paths round it. */
    static Tensor plusBias(Tensor y, Tensor bias) {
        return bias == null ? y : y.add(bias);
    }

    /**
     * Rows below which {@code _weight_int8pack_mm} beats the dequantized bfloat16 GEMM: it is tuned
     * for decode rows, and at a training step's thousand rows it is 2.5–3× slower than dequantizing
     * the weight (natively) and multiplying in bfloat16 (crossover ~32 rows here; benchmarks/FINDINGS.md).
     */
    static final long PACK_MAX_ROWS = 32;

    /**
     * A decode step's few rows through {@link Int8RowsLinear} (reads the int8 weight once and widens
     * it in registers, and adds the bias in the same call), where the CPU has AVX2. {@code _weight_int8pack_mm} where it is fast:
     * bfloat16 activations, a few more rows (in this libtorch build only its bfloat16 path is vectorized).
     * bfloat16 batches of many rows go through {@link Bf16Gemm}, which dequantizes the weight as it
     * packs it; other float32 batches multiply the dequantized weight — the same products
     * (benchmarks/FINDINGS.md).
     */
    private static Tensor weightOnly(Tensor x2d, Int8Weight w, Tensor bias) {
        boolean rows = Int8RowsLinear.applies(x2d, w.values(), w.scales());
        // The bias in the kernel's call where it gives the numbers of an add after it.
        if (rows && bias != null && Int8RowsLinear.takesBias(x2d, w.values(), bias)) return Int8RowsLinear.forward(x2d, w.values(), w.scales(), bias);
        return plusBias(rows ? Int8RowsLinear.forward(x2d, w.values(), w.scales()) : weightOnlyProduct(x2d, w), bias);
    }

    private static Tensor weightOnlyProduct(Tensor x2d, Int8Weight w) {
        // Many bfloat16 rows: the GEMM dequantizes the weight as it packs it, so no copy is made
        // at any weight size.
        if (Bf16Gemm.appliesInt8(x2d, w.values(), w.scales(), true)) return Bf16Gemm.int8Linear(x2d, w.values(), w.scales(), null);
        boolean bf16 = x2d.scalar_type().value == ScalarType.BFloat16.value;
        // An lm_head-sized weight stays on the pack kernel at any row count: its dequantized copy
        // would be a transient of hundreds of megabytes.
        if (bf16 && (x2d.size(0) < PACK_MAX_ROWS || !DequantizeScratch.pooled(w, x2d.scalar_type()))) {
            return AtenShim.weightInt8PackMm(x2d.contiguous(), w.values(), w.scales().to(x2d.scalar_type()));
        }
        if (x2d.size(0) == 1) return oneRowDequantized(x2d, w);
        try (Tensor weight = DequantizeScratch.weight(w, x2d.scalar_type())) {
            return Bf16Gemm.applies(x2d, weight, true) ? Bf16Gemm.linear(x2d, weight, null) : torch.linear(x2d, weight);
        }
    }

    /**
     * One float32 row times an int8 weight: the weight dequantized a cache-sized block of rows at
     * a time and each block multiplied by {@code mv} while it is in cache — the dequantized GEMM's
     * numbers, at about the int8 weight's read cost instead of a whole float copy written and read
     * back. ({@code _weight_int8pack_mm}'s float32 path is not vectorized in this libtorch.)
     */
    private static Tensor oneRowDequantized(Tensor x2d, Int8Weight w) {
        long out = w.outFeatures();
        long block = Math.max(1, (1L << 20) / (Float.BYTES * w.inFeatures()));     // 1 MiB of float32 rows: stays in L2
        Tensor x = x2d.reshape(w.inFeatures());
        Tensor y = torch.empty(new long[]{out}, x.options(), new MemoryFormatOptional());
        for (long start = 0; start < out; start += block) {
            long n = Math.min(block, out - start);
            try (PointerScope scope = new PointerScope()) {
                torch.mv_out(y.narrow(0, start, n), w.dequantizeRows(start, n, x.scalar_type()), x);
            }
        }
        return y.view(1, out);
    }
}
