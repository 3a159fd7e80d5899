package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The many-row float32 products by native/f32_gemm.c (AVX-512F): a linear layer's {@code x Wᵀ + b},
 * its input gradient {@code dy W}, and the streamed head's two products — what {@link Bf16Gemm} is
 * for bfloat16. libtorch hands float32 products to OpenBLAS, whose kernel follows the CPU it detects
 * or {@code OPENBLAS_CORETYPE}; this kernel runs AVX-512 FMAs whatever that says. C's columns are
 * split, 64 at a time, over libtorch's OpenMP threads. Where the CPU lacks AVX-512F, or the tensors
 * are not contiguous float32 CPU tensors outside autograd, {@link #applies} is false and callers
 * keep libtorch's ops.
 */
public final class F32Gemm {
    /** Rows of A from which the kernel is used: fewer are a decode step's, which {@link F32RowsLinear} multiplies without packing W. */
    public static final long MIN_ROWS = F32RowsLinear.MAX_ROWS + 1;

    private static final MethodHandle KERNEL = bind();
    private static final MethodHandle SCRATCH_BYTES = KERNEL == null ? null
            : NativeKernels.bind("bt_f32_gemm_scratch_bytes", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));

    private F32Gemm() {}

    private static MethodHandle bind() {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout.OfInt i = ValueLayout.JAVA_INT;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bindIfSupported("bt_f32_gemm_supported", "bt_f32_gemm", FunctionDescriptor.ofVoid(a, l, a, l, i, a, a, l, i, l, l, l, a, i));
    }

    /** True when this CPU has AVX-512F and the kernel is built. */
    public static boolean supported() { return KERNEL != null; }

    /**
     * True when the kernel takes {@code a} [..., k] times {@code w} — [n, k] for {@code a wᵀ}
     * ({@code transposed}), [k, n] for {@code a w}: float32, contiguous, on the CPU, outside
     * autograd, at least {@link #MIN_ROWS} rows.
     */
    public static boolean applies(Tensor a, Tensor w, boolean transposed) {
        if (KERNEL == null || !plain(a) || !plain(w) || w.dim() != 2) return false;
        long k = transposed ? w.size(1) : w.size(0);
        return k > 0 && a.size(-1) == k && a.numel() / k >= MIN_ROWS && w.numel() > 0;
    }

    /** {@link #applies} for a linear layer {@code x Wᵀ + b}, {@code bias} [out] or null. */
    public static boolean appliesToLinear(Tensor x, Tensor weight, Tensor bias) {
        return applies(x, weight, true) && (bias == null || plain(bias) && bias.dim() == 1 && bias.size(0) == weight.size(0));
    }

    /** {@code x} [..., in] · {@code weight} [out, in]ᵀ + {@code bias} [out] (or null) → [..., out], a new tensor (not a view). */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        require(appliesToLinear(x, weight, bias));
        Tensor y = torch.empty(Tensors.shapeWithLast(x, weight.size(0)), x.options(), new MemoryFormatOptional());
        run(x, weight, true, bias, y, false);
        return y;
    }

    /** {@code dy} [..., out] · {@code weight} [out, in] → [..., in], a linear layer's input gradient; call where {@link #applies}(dy, weight, false). */
    public static Tensor inputGradient(Tensor dy, Tensor weight) {
        require(applies(dy, weight, false));
        Tensor dx = torch.empty(Tensors.shapeWithLast(dy, weight.size(1)), dy.options(), new MemoryFormatOptional());
        run(dy, weight, false, null, dx, false);
        return dx;
    }

    /** {@code c} [m, n] = {@code a} [m, k] · {@code w} [n, k]ᵀ, written in place. */
    public static void linearInto(Tensor c, Tensor a, Tensor w) {
        require(applies(a, w, true) && a.dim() == 2 && Bf16Gemm.output(c, a.size(0), w.size(0), ScalarType.Float));
        run(a, w, true, null, c, false);
    }

    /** {@code c} [m, n] += {@code a} [m, k] · {@code w} [k, n]. */
    public static void addProductInto(Tensor c, Tensor a, Tensor w) {
        require(applies(a, w, false) && a.dim() == 2 && Bf16Gemm.output(c, a.size(0), w.size(1), ScalarType.Float));
        run(a, w, false, null, c, true);
    }

    private static void run(Tensor a, Tensor w, boolean transposed, Tensor bias, Tensor c, boolean add) {
        long k = transposed ? w.size(1) : w.size(0);
        long n = transposed ? w.size(0) : w.size(1);
        long m = a.numel() / k;
        int threads = Math.max(1, torch.get_num_threads());
        try (Tensor packed = NativeKernels.threadScratch(SCRATCH_BYTES, "bt_f32_gemm_scratch_bytes", m, k, threads)) {
            call(NativeMemory.of(a), k, NativeMemory.of(w), transposed ? k : n, transposed ? 1 : 0, NativeMemory.ofNullable(bias),
                    NativeMemory.of(c), n, add ? 1 : 0, m, n, k, NativeMemory.of(packed), threads);
        }
    }

    private static void call(MemorySegment a, long lda, MemorySegment w, long ldw, int transposed, MemorySegment bias, MemorySegment c,
                             long ldc, int add, long m, long n, long k, MemorySegment packed, int threads) {
        try {
            KERNEL.invokeExact(a, lda, w, ldw, transposed, bias, c, ldc, add, m, n, k, packed, threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to f32_gemm failed", t);
        }
    }

    private static boolean plain(Tensor t) {
        return t.scalar_type().value == ScalarType.Float.value && t.is_cpu() && t.is_contiguous() && !t.requires_grad();
    }

    private static void require(boolean applies) {
        if (!applies) throw new IllegalArgumentException("f32_gemm does not take these tensors");
    }
}
