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
 * The training step's many-row bfloat16 products by native/bf16_gemm.c (AVX512_BF16): a linear
 * layer's {@code x Wᵀ + b}, its input gradient {@code dy W}, and the streamed head's two products;
 * for an int8 weight with row scales the same products of its dequantized weight, dequantized as
 * the kernel packs it (no bfloat16 copy of the weight is written). It multiplies by {@code vdpbf16ps}
 * or by float32 FMAs on the same numbers widened, whichever this CPU runs faster ({@link Bf16Products}).
 * C's columns are split, 64 at a time, over libtorch's OpenMP threads. Where the CPU lacks
 * AVX512_BF16, or the tensors are not contiguous bfloat16 CPU tensors outside autograd with an even
 * inner size, {@link #applies} is false and callers keep libtorch's ops.
 */
public final class Bf16Gemm {
    /**
     * Rows of A from which the kernel is used: it packs B afresh on every call, which a few rows do
     * not repay (decode steps have their row kernels).
     */
    public static final long MIN_ROWS = 64;

    private static final MethodHandle KERNEL = bind();
    private static final MethodHandle INT8_KERNEL = bindInt8();
    private static final MethodHandle SCRATCH_BYTES = KERNEL == null ? null
            : NativeKernels.bind("bt_bf16_gemm_scratch_bytes", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    private static final MethodHandle PRODUCTS = KERNEL == null ? null
            : NativeKernels.bind("bt_bf16_gemm_products", FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle SET_PRODUCTS = KERNEL == null ? null
            : NativeKernels.bind("bt_bf16_gemm_set_products", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));

    static {
        // chosen here, before any call runs threads: the property's way, or the kernel measures both
        Bf16Products chosen = Bf16Products.parse(System.getProperty(Bf16Products.PROPERTY));
        if (KERNEL != null) {
            if (chosen != null) useProducts(chosen);
            products();
        }
    }

    private Bf16Gemm() {}

    private static MethodHandle bind() {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout.OfInt i = ValueLayout.JAVA_INT;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bindIfSupported("bt_bf16_gemm_supported", "bt_bf16_gemm",
                FunctionDescriptor.ofVoid(a, l, a, l, i, a, a, l, i, l, l, l, a, i));
    }

    private static MethodHandle bindInt8() {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout.OfInt i = ValueLayout.JAVA_INT;
        ValueLayout a = ValueLayout.ADDRESS;
        return NativeKernels.bindIfSupported("bt_bf16_gemm_supported", "bt_bf16_gemm_int8",
                FunctionDescriptor.ofVoid(a, l, a, a, l, i, a, a, l, i, l, l, l, a, i));
    }

    /** True when this CPU has AVX512_BF16 and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** How this process's products multiply ({@link Bf16Products#PAIRS} where the kernel is not supported). */
    public static Bf16Products products() {
        if (PRODUCTS == null) return Bf16Products.PAIRS;
        try {
            return Bf16Products.values()[(int) PRODUCTS.invokeExact()];
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_bf16_gemm_products failed", t);
        }
    }

    /**
     * Makes the following products multiply {@code way}'s way, for tests and benchmarks that compare
     * the two on one CPU; call it between products, never while one runs.
     */
    public static void useProducts(Bf16Products way) {
        if (SET_PRODUCTS == null) return;
        try {
            SET_PRODUCTS.invokeExact(way.code());
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_bf16_gemm_set_products failed", t);
        }
    }

    /**
     * True when the kernel takes {@code a} [..., k] times {@code w} — [n, k] for {@code a wᵀ}
     * ({@code transposed}), [k, n] for {@code a w}: bfloat16, contiguous, on the CPU, outside
     * autograd, k even, at least {@link #MIN_ROWS} rows.
     */
    public static boolean applies(Tensor a, Tensor w, boolean transposed) {
        if (KERNEL == null || !plain(a) || !plain(w) || w.dim() != 2) return false;
        return takes(a, transposed ? w.size(1) : w.size(0), w);
    }

    /**
     * {@link #applies} for an int8 weight: {@code values} [out, in] int8 and {@code scales} [out]
     * float32, contiguous CPU tensors, standing for {@code values · scales} rounded to bfloat16 as
     * {@link Int8Dequantize} rounds it.
     */
    public static boolean appliesInt8(Tensor a, Tensor values, Tensor scales, boolean transposed) {
        if (INT8_KERNEL == null || !plain(a) || !Int8Dequantize.applies(values, scales, ScalarType.BFloat16)) return false;
        return takes(a, transposed ? values.size(1) : values.size(0), values);
    }

    /** a [..., k] with k even and at least {@link #MIN_ROWS} rows, times a non-empty weight. */
    private static boolean takes(Tensor a, long k, Tensor w) {
        return k > 0 && k % 2 == 0 && a.size(-1) == k && a.numel() / k >= MIN_ROWS && w.numel() > 0;
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

    /** {@link #linear} of the int8 weight {@code values} [out, in] · {@code scales} [out] (see {@link #appliesInt8}). */
    public static Tensor int8Linear(Tensor x, Tensor values, Tensor scales, Tensor bias) {
        require(appliesInt8(x, values, scales, true) && (bias == null || plain(bias) && bias.dim() == 1 && bias.size(0) == values.size(0)));
        Tensor y = torch.empty(Tensors.shapeWithLast(x, values.size(0)), x.options(), new MemoryFormatOptional());
        run(x, values, scales, true, bias, y, false);
        return y;
    }

    /** {@link #inputGradient} through the int8 weight {@code values} [out, in] · {@code scales} [out]. */
    public static Tensor int8InputGradient(Tensor dy, Tensor values, Tensor scales) {
        require(appliesInt8(dy, values, scales, false));
        Tensor dx = torch.empty(Tensors.shapeWithLast(dy, values.size(1)), dy.options(), new MemoryFormatOptional());
        run(dy, values, scales, false, null, dx, false);
        return dx;
    }

    /** {@code c} [m, n] bfloat16 = {@code a} [m, k] · {@code w} [n, k]ᵀ, written in place. */
    public static void linearInto(Tensor c, Tensor a, Tensor w) {
        require(applies(a, w, true) && a.dim() == 2 && output(c, a.size(0), w.size(0), ScalarType.BFloat16));
        run(a, w, true, null, c, false);
    }

    /** {@code c} [m, n] float32 += {@code a} [m, k] · {@code w} [k, n], the product summed in float32. */
    public static void addProductInto(Tensor c, Tensor a, Tensor w) {
        require(applies(a, w, false) && a.dim() == 2 && output(c, a.size(0), w.size(1), ScalarType.Float));
        run(a, w, false, null, c, true);
    }

    private static void run(Tensor a, Tensor w, boolean transposed, Tensor bias, Tensor c, boolean cF32) {
        run(a, w, null, transposed, bias, c, cF32);
    }

    /** {@code w} bfloat16, or int8 with {@code scales} (else null). */
    private static void run(Tensor a, Tensor w, Tensor scales, boolean transposed, Tensor bias, Tensor c, boolean cF32) {
        long k = transposed ? w.size(1) : w.size(0);
        long n = transposed ? w.size(0) : w.size(1);
        long m = a.numel() / k;
        int threads = Math.max(1, torch.get_num_threads());
        try (Tensor packed = scratch(m, k, threads)) {
            call(NativeMemory.of(a), k, NativeMemory.of(w), scales == null ? null : NativeMemory.of(scales), transposed ? k : n,
                    transposed ? 1 : 0, NativeMemory.ofNullable(bias), NativeMemory.of(c), n, cF32 ? 1 : 0, m, n, k, NativeMemory.of(packed), threads);
        }
    }

    private static void call(MemorySegment a, long lda, MemorySegment w, MemorySegment scales, long ldw, int transposed, MemorySegment bias,
                             MemorySegment c, long ldc, int cF32, long m, long n, long k, MemorySegment packed, int threads) {
        try {
            if (scales == null) KERNEL.invokeExact(a, lda, w, ldw, transposed, bias, c, ldc, cF32, m, n, k, packed, threads);
            else INT8_KERNEL.invokeExact(a, lda, w, scales, ldw, transposed, bias, c, ldc, cF32, m, n, k, packed, threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bf16_gemm failed", t);
        }
    }

    /** The kernel's scratch for {@code threads} threads: a packed block of B and, for a long k, float32 partial sums. */
    private static Tensor scratch(long m, long k, int threads) {
        return NativeKernels.threadScratch(SCRATCH_BYTES, "bt_bf16_gemm_scratch_bytes", m, k, threads);
    }

    private static boolean plain(Tensor t) {
        return t.scalar_type().value == ScalarType.BFloat16.value && t.is_cpu() && t.is_contiguous() && !t.requires_grad();
    }

    /** True when {@code c} is a contiguous CPU [rows, cols] matrix of {@code type}: an output the kernels write in place. */
    static boolean output(Tensor c, long rows, long cols, ScalarType type) {
        return c.scalar_type().value == type.value && c.is_cpu() && c.is_contiguous() && c.dim() == 2
                && c.size(0) == rows && c.size(1) == cols;
    }

    private static void require(boolean applies) {
        if (!applies) throw new IllegalArgumentException("bf16_gemm does not take these tensors");
    }
}
