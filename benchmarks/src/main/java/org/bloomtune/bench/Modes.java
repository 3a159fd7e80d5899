package org.bloomtune.bench;

import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.Int8F32Panels;
import org.bloomtune.kernels.Int8Products;
import org.bloomtune.model.Int8Mode;
import org.bloomtune.model.Int8Options;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;

/**
 * The compute modes every benchmark table uses, by the name its rows carry: float32, bfloat16,
 * int8 weight-only (bf16 compute — the vectorized kernel is bf16-only in this libtorch), LLM.int8
 * (int8 × int8 GEMMs; float32 compute elsewhere, or bf16 with the {@code bf16-} prefix).
 */
final class Modes {
    private Modes() {}

    static LoadOptions options(String mode) {
        return switch (mode) {
            case "fp32" -> LoadOptions.defaults();
            case "bf16" -> LoadOptions.defaults().withDtype(DType.BF16);
            case "int8-weight-only" -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.WEIGHT_ONLY));
            case "bf16-int8-weight-only" -> LoadOptions.defaults().withDtype(DType.BF16).withInt8(Int8Options.of(Int8Mode.WEIGHT_ONLY));
            case "int8-llm-int8" -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.LLM_INT8));
            case "bf16-int8-llm-int8" -> LoadOptions.defaults().withDtype(DType.BF16).withInt8(Int8Options.of(Int8Mode.LLM_INT8));
            case "int8-dequantize" -> LoadOptions.defaults().withInt8(Int8Options.of(Int8Mode.DEQUANTIZE));
            default -> throw new IllegalArgumentException("unknown benchmark mode " + mode);
        };
    }

    /** Whether a mode's products are int8 × int8 (LLM.int8, with float32 or bfloat16 activations). */
    static boolean int8Products(String mode) { return mode.endsWith("llm-int8"); }

    /**
     * Whether a weight-only mode's inference-only panels multiply by x's int8 digits on this CPU
     * ({@link Int8Products#DIGITS}): int8 × int8 products too, a multiply-add costing one a digit.
     */
    static boolean byDigits(String mode) {
        if (!mode.endsWith("int8-weight-only") || !Int8Bf16Panels.supported()) return false;
        return (mode.startsWith("bf16") ? Int8Bf16Panels.products() : Int8F32Panels.products()) == Int8Products.DIGITS;
    }

    /** The GEMM peak a mode's MFU is measured against: bf16 for bf16 compute, fp32 otherwise. */
    static String peakDtype(String mode) { return mode.startsWith("bf16") ? "bf16" : "fp32"; }
}
