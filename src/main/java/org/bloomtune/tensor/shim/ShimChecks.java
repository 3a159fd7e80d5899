package org.bloomtune.tensor.shim;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * What each shim op requires, checked before any pointer crosses into native code: a violated
 * precondition there would be a libtorch error at best and a crash at worst.
 */
final class ShimChecks {
    private ShimChecks() {}

    static void weightInt8PackMm(Tensor x, Tensor weight, Tensor scales) {
        String op = "_weight_int8pack_mm";
        cpu(op, x, weight, scales);
        require(op, x.dim() == 2 && x.is_contiguous(), "x must be a contiguous 2-D tensor, got " + AtenShim.describe(x));
        require(op, isOneOf(x.scalar_type(), ScalarType.Float, ScalarType.BFloat16, ScalarType.Half),
                "x must be float32, bfloat16 or float16, got " + x.scalar_type());
        require(op, weight.dim() == 2 && weight.is_contiguous() && same(weight.scalar_type(), ScalarType.Char),
                "weight must be a contiguous int8 [N, K], got " + AtenShim.describe(weight));
        require(op, weight.size(1) == x.size(1), "x is [M, " + x.size(1) + "] but weight is [N, " + weight.size(1) + "]");
        require(op, scales.dim() == 1 && scales.size(0) == weight.size(0) && same(scales.scalar_type(), x.scalar_type())
                && scales.is_contiguous(), "scales must be [" + weight.size(0) + "] of x's dtype, got " + AtenShim.describe(scales));
    }

    static void intMm(Tensor out, Tensor a, Tensor b) {
        String op = "_int_mm";
        cpu(op, out, a, b);
        require(op, a.dim() == 2 && b.dim() == 2 && out.dim() == 2, "all tensors must be 2-D");
        require(op, same(a.scalar_type(), ScalarType.Char) && same(b.scalar_type(), ScalarType.Char), "a and b must be int8");
        require(op, same(out.scalar_type(), ScalarType.Int) && out.is_contiguous(), "out must be a contiguous int32 tensor");
        require(op, a.size(1) == b.size(0), "a is [M, " + a.size(1) + "] but b is [" + b.size(0) + ", N]");
        require(op, out.size(0) == a.size(0) && out.size(1) == b.size(1), "out must be [" + a.size(0) + ", " + b.size(1) + "]");
    }

    private static void cpu(String op, Tensor... tensors) {
        for (Tensor t : tensors) {
            require(op, t.defined(), "an argument is an undefined tensor");
            require(op, t.device().is_cpu(), "the CPU shim needs CPU tensors, got one on " + t.device().str().getString());
        }
    }

    private static boolean isOneOf(ScalarType t, ScalarType... options) {
        for (ScalarType o : options) if (same(t, o)) return true;
        return false;
    }

    static boolean same(ScalarType a, ScalarType b) { return a.value == b.value; }

    private static void require(String op, boolean ok, String what) {
        if (!ok) throw new IllegalArgumentException(op + ": " + what);
    }
}
