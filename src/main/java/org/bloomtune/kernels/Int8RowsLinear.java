package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * {@code x · (values · scales)ᵀ} for a decode step's few rows of x — the weight-only int8 mode — by
 * native/int8_rows_linear.c (AVX2 + FMA; float32 rows by {@code bt_int8_f32_rows_linear} in
 * native/f32_rows_linear.c where the CPU has AVX-512F), which reads the int8 weight once for all
 * rows and widens it in registers; the weight's rows are split over libtorch's thread count. Sums
 * are float32; a bfloat16 x is widened first and the result rounded once. Up to {@link #MAX_ROWS} float32 rows
 * (libtorch's {@code _weight_int8pack_mm} has no vectorized float32 path) and
 * {@link #MAX_BF16_ROWS} bfloat16 rows (beyond that its bfloat16 path is faster). Where the CPU
 * lacks AVX2/FMA or the tensors are not contiguous CPU tensors outside autograd, callers keep
 * libtorch's kernels. {@link #intMm} is LLM.int8's int8 × int8 → int32 product for the same few
 * rows, equal to {@code _int_mm}'s, on AVX512-VNNI where the CPU has it (native/int8_vnni_int_mm.c)
 * and AVX2 otherwise.
 */
public final class Int8RowsLinear {
    /** Rows of x one call of the float32 kernels, the AVX512_BF16 kernel and the VNNI product takes. */
    public static final int CALL_ROWS = 8;

    /**
     * float32 rows up to which the kernels are used, {@link #CALL_ROWS} a call against each block of
     * weight rows: one call beats the dequantized GEMM here, and past it two calls still beat it
     * several times over (a server's decode batch of 16; benchmarks/FINDINGS.md).
     */
    public static final int MAX_ROWS = 16;

    /** bfloat16 rows up to which it beats {@code _weight_int8pack_mm} here (benchmarks/FINDINGS.md). */
    public static final int MAX_BF16_ROWS = 2;

    /**
     * bfloat16 rows taken where the CPU has AVX512_BF16, {@link #CALL_ROWS} a call:
     * native/int8_bf16_rows_linear.c widens each weight chunk once to bfloat16 for all rows, so a
     * decode batch of eight is not bound by arithmetic as the float32 kernel is, and two calls beat
     * {@code _weight_int8pack_mm} up to 16 (benchmarks/FINDINGS.md).
     */
    public static final int MAX_AVX512_BF16_ROWS = 16;

    /** int8 rows up to which LLM.int8's int32 product goes through the AVX2 kernel rather than {@code _int_mm} (benchmarks/FINDINGS.md). */
    public static final int MAX_INT_MM_ROWS = 4;

    /** The same with AVX512-VNNI (native/int8_vnni_int_mm.c), {@link #CALL_ROWS} a call: past eight, {@code _int_mm} was several times slower (benchmarks/FINDINGS.md). */
    public static final int MAX_VNNI_INT_MM_ROWS = 16;

    /** Which instructions LLM.int8's few-row product runs on. */
    enum IntMmKernel { AVX2, VNNI }

    private static final MethodHandle KERNEL = bindIfSupported("bt_int8_rows_supported", "bt_int8_rows_linear", 5);    // values, scales, x, bias, y
    private static final MethodHandle INT_MM = bindIfSupported("bt_int8_rows_supported", "bt_int8_rows_int_mm", 3);    // values, x, y
    private static final MethodHandle AVX512_KERNEL = bindIfSupported("bt_f32_rows_supported", "bt_int8_f32_rows_linear", 5);
    private static final MethodHandle BF16_KERNEL = bindIfSupported("bt_bf16_rows_supported", "bt_int8_bf16_rows_linear", 5);
    private static final MethodHandle VNNI_INT_MM = bindIfSupported("bt_int8_vnni_supported", "bt_int8_vnni_int_mm", 3);

    private Int8RowsLinear() {}

    /** True when this CPU has AVX2 and FMA and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when the kernel takes {@code x2d} [rows, in] times {@code values} [out, in] int8 with {@code scales} [out] float32. */
    public static boolean applies(Tensor x2d, Tensor values, Tensor scales) {
        if (KERNEL == null || x2d.requires_grad() || x2d.dim() != 2 || !x2d.is_cpu()) return false;
        int type = x2d.scalar_type().value;
        int maxRows = type == ScalarType.Float.value ? MAX_ROWS
                : type == ScalarType.BFloat16.value ? (BF16_KERNEL != null ? MAX_AVX512_BF16_ROWS : MAX_BF16_ROWS) : 0;
        if (values.dim() != 2 || values.scalar_type().value != ScalarType.Char.value || !values.is_contiguous() || !values.is_cpu()) return false;
        if (scales.dim() != 1 || scales.size(0) != values.size(0) || scales.scalar_type().value != ScalarType.Float.value
                || !scales.is_contiguous() || !scales.is_cpu()) return false;
        return values.size(1) == x2d.size(1) && values.size(1) > 0 && x2d.size(0) >= 1 && x2d.size(0) <= maxRows;
    }

    /** {@code x2d} [rows, in] → [rows, out] in x's dtype; call only where {@link #applies}. */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales) {
        return forward(x2d, values, scales, null, true);
    }

    /**
     * {@link #forward(Tensor, Tensor, Tensor)}, each row's argmax merged into {@code picks}: by the
     * thread that writes each range where the kernel writes x's dtype, from the rounded result where
     * it rounds after.
     */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales, RowsArgmax.Picks picks) {
        return forward(x2d, values, scales, null, true, picks);
    }

    /**
     * True when {@link #forward(Tensor, Tensor, Tensor, Tensor)} adds {@code bias} in the kernel's call
     * with the numbers of an add after it: [out] in x's dtype, contiguous, CPU, and x float32 or
     * bfloat16 on the AVX512_BF16 kernel (elsewhere bfloat16 rows are computed in float32 and
     * rounded after, and the add must follow that rounding).
     */
    public static boolean takesBias(Tensor x2d, Tensor values, Tensor bias) {
        int type = x2d.scalar_type().value;
        return (type == ScalarType.Float.value || (type == ScalarType.BFloat16.value && BF16_KERNEL != null))
                && bias.dim() == 1 && bias.size(0) == values.size(0) && bias.scalar_type().value == type
                && bias.is_contiguous() && bias.is_cpu();
    }

    /** The same plus {@code bias}, added in the kernel's call; call only where {@link #applies} and {@link #takesBias}. */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales, Tensor bias) {
        return forward(x2d, values, scales, bias, true);
    }

    /**
     * The native call {@link #forward(Tensor, Tensor, Tensor, Tensor)} makes for {@code x2d} (+ bias or
     * null), for a native caller; null where it does not apply or rounds after the call (bfloat16 rows
     * without the AVX512_BF16 kernel).
     */
    public static RowKernel rowKernel(Tensor x2d, Tensor values, Tensor scales, Tensor bias) {
        if (!applies(x2d, values, scales) || (bias != null && !takesBias(x2d, values, bias)) || x2d.size(0) > CALL_ROWS) return null;
        boolean bf16 = x2d.scalar_type().value == ScalarType.BFloat16.value;
        if (bf16 && BF16_KERNEL == null) return null;
        return RowKernel.int8(RowKernel.Call.INT8, kernel(bf16, true).name(), values, scales, bias, 0);
    }

    /** A row kernel's C name and its bound handle. */
    private record Kernel(String name, MethodHandle handle) {}

    /**
     * The function {@link #forward} calls: bfloat16 rows on the AVX512_BF16 kernel (where {@code bf16},
     * it exists); float32 rows on the AVX-512 one (where {@code avx512} and it exists), which widens each
     * weight chunk once for four rows and streams one row's weight front to back; else the AVX2 one.
     */
    private static Kernel kernel(boolean bf16, boolean avx512) {
        if (bf16) return new Kernel("bt_int8_bf16_rows_linear", BF16_KERNEL);
        if (avx512 && AVX512_KERNEL != null) return new Kernel("bt_int8_f32_rows_linear", AVX512_KERNEL);
        return new Kernel("bt_int8_rows_linear", KERNEL);
    }

    /**
     * As above (bias may be null); without {@code avx512}, float32 rows go through the AVX2 kernel
     * whatever their count (the tests reach it so on a CPU that has AVX-512).
     */
    static Tensor forward(Tensor x2d, Tensor values, Tensor scales, Tensor bias, boolean avx512) {
        return forward(x2d, values, scales, bias, avx512, null);
    }

    private static Tensor forward(Tensor x2d, Tensor values, Tensor scales, Tensor bias, boolean avx512, RowsArgmax.Picks picks) {
        if (!applies(x2d, values, scales) || (bias != null && !takesBias(x2d, values, bias))) {
            throw new IllegalArgumentException("int8_rows_linear does not take these tensors");
        }
        // bfloat16 rows stay bfloat16 where the AVX512_BF16 kernel takes them; elsewhere float32 in and out, rounded after.
        boolean bf16 = BF16_KERNEL != null && x2d.scalar_type().value == ScalarType.BFloat16.value;
        Tensor x = bf16 ? x2d.contiguous() : x2d.to(ScalarType.Float).contiguous();
        Kernel chosen = kernel(bf16, avx512);
        MethodHandle kernel = chosen.handle();
        long n = values.size(0);
        long k = values.size(1);
        long rows = x.size(0);
        long outBytes = x.element_size();
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.of(values);
        MemorySegment s = NativeMemory.of(scales);
        MemorySegment in = NativeMemory.of(x);
        MemorySegment out = NativeMemory.of(y);
        MemorySegment b = NativeMemory.ofNullable(bias);
        boolean merging = picks != null && y.scalar_type().value == x2d.scalar_type().value;   // else the rounded result is merged after
        RowSplit.overWeightRows(chosen.name(), n, rows, (from, count) -> {
            RowSplit.inGroups(from, count, k, rows, CALL_ROWS, (j, nj, r, nr) -> {
                MemorySegment partBias = bias == null ? MemorySegment.NULL : b.asSlice(j * outBytes, nj * outBytes);
                kernel.invokeExact(w.asSlice(j * k, nj * k), s.asSlice(j * 4, nj * 4), in.asSlice(r * k * outBytes), partBias,
                        out.asSlice((r * n + j) * outBytes), nr, nj, k, n);
            });
            if (merging) picks.merge(out, n, from, count, bf16);
        });
        if (y.scalar_type().value == x2d.scalar_type().value) return y;
        Tensor rounded = y.to(x2d.scalar_type());
        if (picks != null) picks.mergeAll(rounded);
        return rounded;
    }

    /**
     * True when the kernel takes LLM.int8's product {@code out} [rows, out] int32 = {@code x8} [rows, in]
     * int8 · {@code values}ᵀ ({@code values} [out, in] int8): few rows, contiguous CPU tensors.
     */
    public static boolean appliesIntMm(Tensor out, Tensor x8, Tensor values) {
        return appliesIntMm(out, x8, values, intMmKernel(x8));
    }

    /** VNNI where the CPU has it (one row reads each weight row front to back there: benchmarks/FINDINGS.md), else AVX2. */
    private static IntMmKernel intMmKernel(Tensor x8) {
        return VNNI_INT_MM != null ? IntMmKernel.VNNI : IntMmKernel.AVX2;
    }

    static boolean appliesIntMm(Tensor out, Tensor x8, Tensor values, IntMmKernel kernel) {
        if (handle(kernel) == null || x8.dim() != 2 || values.dim() != 2 || out.dim() != 2) return false;
        if (!int8Cpu(x8) || !int8Cpu(values) || out.scalar_type().value != ScalarType.Int.value || !out.is_contiguous() || !out.is_cpu()) return false;
        int maxRows = kernel == IntMmKernel.VNNI ? MAX_VNNI_INT_MM_ROWS : MAX_INT_MM_ROWS;
        return x8.size(1) == values.size(1) && values.size(1) > 0 && x8.size(0) >= 1 && x8.size(0) <= maxRows
                && out.size(0) == x8.size(0) && out.size(1) == values.size(0);
    }

    /** True when this CPU has AVX512_BF16 and bfloat16 rows go through native/int8_bf16_rows_linear.c. */
    static boolean avx512Bf16Supported() { return BF16_KERNEL != null; }

    /** True when this CPU has AVX512-VNNI and AVX512BW and the kernels are built (and {@code -Dbloomtune.kernels} allows them). */
    public static boolean vnniSupported() { return VNNI_INT_MM != null; }

    private static MethodHandle handle(IntMmKernel kernel) { return kernel == IntMmKernel.VNNI ? VNNI_INT_MM : INT_MM; }

    private static boolean int8Cpu(Tensor t) {
        return t.scalar_type().value == ScalarType.Char.value && t.is_contiguous() && t.is_cpu();
    }

    /** {@code out} = {@code x8} · {@code values}ᵀ in int32, exactly as {@code _int_mm}; call only where {@link #appliesIntMm}. */
    public static void intMm(Tensor out, Tensor x8, Tensor values) {
        intMm(out, x8, values, intMmKernel(x8));
    }

    static void intMm(Tensor out, Tensor x8, Tensor values, IntMmKernel kernel) {
        if (!appliesIntMm(out, x8, values, kernel)) throw new IllegalArgumentException("int8 " + kernel + " int_mm does not take these tensors");
        MethodHandle product = handle(kernel);
        long n = values.size(0);
        long k = values.size(1);
        long rows = x8.size(0);
        MemorySegment w = NativeMemory.of(values);
        MemorySegment in = NativeMemory.of(x8);
        MemorySegment y = NativeMemory.of(out);
        RowSplit.overWeightRows(kernel == IntMmKernel.VNNI ? "bt_int8_vnni_int_mm" : "bt_int8_rows_int_mm", n, rows, (from, count) -> {
            RowSplit.inGroups(from, count, k, rows, CALL_ROWS, (j, nj, r, nr) -> {
                product.invokeExact(w.asSlice(j * k, nj * k), in.asSlice(r * k), y.asSlice((r * n + j) * 4), nr, nj, k, n);
            });
        });
    }

    private static MethodHandle bindIfSupported(String supported, String name, int pointers) {
        ValueLayout[] args = new ValueLayout[pointers + 4];
        java.util.Arrays.fill(args, 0, pointers, ValueLayout.ADDRESS);
        java.util.Arrays.fill(args, pointers, args.length, ValueLayout.JAVA_LONG);   // rows, n, k, ldy
        return NativeKernels.bindIfSupported(supported, name, FunctionDescriptor.ofVoid(args));
    }
}
