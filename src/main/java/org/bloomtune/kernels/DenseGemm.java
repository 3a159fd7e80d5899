package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The many-row products of a dense weight by the native GEMM of its dtype: {@link Bf16Gemm} for
 * bfloat16, {@link F32Gemm} for float32. Each method goes to the kernel of {@code a}'s dtype; where
 * that kernel does not take the tensors (another dtype, a CPU without its instructions, too few
 * rows), {@code applies} is false and callers keep libtorch's ops.
 */
public final class DenseGemm {
    private DenseGemm() {}

    private static boolean bf16(Tensor a) { return a.scalar_type().value == ScalarType.BFloat16.value; }

    /** True when a kernel takes {@code a} [..., k] times {@code w} ([n, k] for {@code a wᵀ} when {@code transposed}, else [k, n]). */
    public static boolean applies(Tensor a, Tensor w, boolean transposed) {
        return bf16(a) ? Bf16Gemm.applies(a, w, transposed) : F32Gemm.applies(a, w, transposed);
    }

    /** {@link #applies} for a linear layer {@code x Wᵀ + b}, {@code bias} [out] or null. */
    public static boolean appliesToLinear(Tensor x, Tensor weight, Tensor bias) {
        return bf16(x) ? Bf16Gemm.appliesToLinear(x, weight, bias) : F32Gemm.appliesToLinear(x, weight, bias);
    }

    /** {@link #appliesToLinear}, and the input gradient's product (a sum over the layer's outputs: bfloat16 takes an even count) too. */
    public static boolean appliesBothWays(Tensor x, Tensor weight, Tensor bias) {
        return appliesToLinear(x, weight, bias) && (!bf16(x) || weight.size(0) % 2 == 0);
    }

    /** {@code x} [..., in] · {@code weight} [out, in]ᵀ + {@code bias} [out] (or null) → [..., out]; call where {@link #appliesToLinear}. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        return bf16(x) ? Bf16Gemm.linear(x, weight, bias) : F32Gemm.linear(x, weight, bias);
    }

    /** {@code dy} [..., out] · {@code weight} [out, in] → [..., in]; call where {@link #applies}(dy, weight, false). */
    public static Tensor inputGradient(Tensor dy, Tensor weight) {
        return bf16(dy) ? Bf16Gemm.inputGradient(dy, weight) : F32Gemm.inputGradient(dy, weight);
    }

    /** {@code c} [m, n] (of a's dtype) = {@code a} [m, k] · {@code w} [n, k]ᵀ, written in place. */
    public static void linearInto(Tensor c, Tensor a, Tensor w) {
        if (bf16(a)) Bf16Gemm.linearInto(c, a, w);
        else F32Gemm.linearInto(c, a, w);
    }

    /** {@code c} [m, n] float32 += {@code a} [m, k] · {@code w} [k, n]. */
    public static void addProductInto(Tensor c, Tensor a, Tensor w) {
        if (bf16(a)) Bf16Gemm.addProductInto(c, a, w);
        else F32Gemm.addProductInto(c, a, w);
    }
}
