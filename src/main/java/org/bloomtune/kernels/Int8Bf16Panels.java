package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * A frozen int8 weight with row scales laid out for inference by native/int8_bf16_panels.c, for the
 * weight-only int8 mode: panels of {@link #PANEL} output rows with each pair of k side by side
 * ({@link DensePanels}' order, one byte an element), kept instead of the row-major values.
 * {@link #forward} reads them once for any number of bfloat16 rows, each line widened once for all
 * of them, or x written as int8 digits meets them by VNNI ({@link Int8Products}); {@link Int8F32Panels}
 * multiplies float32 rows by the same panels. The packed tensor has the values' shape and size, its bytes
 * reordered. Where the CPU lacks AVX512_BF16 nothing is packed.
 */
public final class Int8Bf16Panels {
    /** Output rows per panel: a weight packs when its row count is a multiple of this. */
    public static final long PANEL = 32;

    private static final MethodHandle KERNEL = NativeKernels.bindIfSupported("bt_bf16_rows_supported", "bt_int8_bf16_panels_linear",
            NativeKernels.INT8_PANELS_LINEAR);
    private static final MethodHandle PACK = KERNEL == null ? null : NativeKernels.bind("bt_int8_bf16_panels_pack", NativeKernels.PACK);
    private static final MethodHandle VALUES = KERNEL == null ? null : NativeKernels.bind("bt_int8_bf16_panels_values", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    private static final MethodHandle DIGITS_BYTES = KERNEL == null ? null : NativeKernels.bind("bt_int8_digits_bytes",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    private static final MethodHandle DIGITS_WRITE = KERNEL == null ? null : NativeKernels.bind("bt_int8_digits_write", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    private static final MethodHandle DIGITS_PANELS = KERNEL == null ? null : NativeKernels.bind("bt_int8_digits_panels", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle PRODUCTS = KERNEL == null ? null
            : NativeKernels.bind("bt_int8_weight_products_for", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    /** bt_int8_weight_set_products' code for no way set: each dtype takes this CPU's default. */
    private static final int EACH_DTYPES_DEFAULT = -1;
    private static final MethodHandle SET_PRODUCTS = KERNEL == null ? null
            : NativeKernels.bind("bt_int8_weight_set_products", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));

    static {
        // these panels multiply as the bfloat16 GEMM does, or by digits where that GEMM widens: its way is chosen here, before any product runs
        Bf16Gemm.products();
        if (KERNEL != null) useDefaultProducts();
    }

    private Int8Bf16Panels() {}

    /** True when this CPU has AVX512_BF16 and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** How the weight-only panels multiply bfloat16 rows ({@link Int8Products#FLOATS} where nothing packs). */
    public static Int8Products products() { return products(true); }

    /** The way for bfloat16 or float32 rows of x: the one set, else this CPU's for that dtype. */
    static Int8Products products(boolean bf16) {
        if (PRODUCTS == null) return Int8Products.FLOATS;
        try {
            return Int8Products.values()[(int) PRODUCTS.invokeExact(bf16 ? 1 : 0)];
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_int8_weight_products_for failed", t);
        }
    }

    /**
     * Makes the following products of both dtypes multiply {@code way}'s way (digits only where the CPU
     * has VNNI: else each dtype's default stays), for tests and benchmarks that compare the two on one
     * CPU; call it between products, never while one runs.
     */
    public static void useProducts(Int8Products way) { setProducts(way.code()); }

    /** Back to the way {@value Int8Products#PROPERTY} names, or each dtype's default for this CPU when it names none. */
    public static void useDefaultProducts() {
        Int8Products chosen = Int8Products.parse(System.getProperty(Int8Products.PROPERTY));
        setProducts(chosen == null ? EACH_DTYPES_DEFAULT : chosen.code());
    }

    private static void setProducts(int code) {
        if (SET_PRODUCTS == null) return;
        try {
            SET_PRODUCTS.invokeExact(code);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_int8_weight_set_products failed", t);
        }
    }

    /** True when {@code values} can be packed: a contiguous int8 CPU matrix with a multiple of {@link #PANEL} rows and an even column count. */
    public static boolean packs(Tensor values) {
        return KERNEL != null && values.scalar_type().value == ScalarType.Char.value && values.is_cpu() && values.is_contiguous()
                && values.dim() == 2 && values.size(0) > 0 && values.size(0) % PANEL == 0 && values.size(1) > 0 && values.size(1) % 2 == 0;
    }

    /** {@code values} [n, k] in panels: a new tensor of the same shape; call where {@link #packs}. */
    public static Tensor pack(Tensor values) {
        if (!packs(values)) throw new IllegalArgumentException("int8_bf16_panels cannot pack these values");
        return NativeKernels.packed(PACK, "bt_int8_bf16_panels_pack", values);
    }

    /**
     * True when {@link #forward} takes {@code x} [..., in] bfloat16 (contiguous, CPU, outside autograd)
     * times {@code panels} [out, in] with {@code scales} [out] float32, plus {@code bias} [out] bfloat16 (or null).
     */
    public static boolean applies(Tensor x, Tensor panels, Tensor scales, Tensor bias) {
        if (KERNEL == null || !packs(panels) || x.requires_grad() || !x.is_cpu() || !x.is_contiguous()) return false;
        if (x.scalar_type().value != ScalarType.BFloat16.value || x.size(-1) != panels.size(1) || x.numel() == 0) return false;
        if (scales.dim() != 1 || scales.scalar_type().value != ScalarType.Float.value || !scales.is_contiguous() || !scales.is_cpu()
                || scales.size(0) != panels.size(0)) return false;
        return bias == null || bias.dim() == 1 && bias.size(0) == panels.size(0) && bias.scalar_type().value == ScalarType.BFloat16.value
                && bias.is_contiguous() && bias.is_cpu();
    }

    /** {@code x} [..., in] → [..., out] in bfloat16: x times the packed weight, by row scale, plus bias; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias) {
        return forward(x, panels, scales, bias, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias, RowsArgmax.Picks picks) {
        if (!applies(x, panels, scales, bias)) throw new IllegalArgumentException("int8_bf16_panels_linear does not take these tensors");
        return product(KERNEL, "bt_int8_bf16_panels_linear", x, panels, scales, bias, picks);
    }

    /**
     * x [..., k] times the packed weight by one of the weight-only panel kernels ({@code kernel}, named
     * {@code name}; this class's or {@link Int8F32Panels}'), split over threads in whole panels: [..., n]
     * in x's dtype (bfloat16 or float32, the bias's too), each range of outputs merged into {@code picks} (or null).
     */
    static Tensor product(MethodHandle kernel, String name, Tensor x, Tensor panels, Tensor scales, Tensor bias, RowsArgmax.Picks picks) {
        long n = panels.size(0);
        long k = panels.size(1);
        long rows = x.numel() / k;
        boolean bf16 = x.scalar_type().value == ScalarType.BFloat16.value;
        long element = bf16 ? 2 : 4;
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.of(panels);
        MemorySegment s = NativeMemory.of(scales);
        MemorySegment in = NativeMemory.of(x);
        MemorySegment b = NativeMemory.ofNullable(bias);
        MemorySegment out = NativeMemory.of(y);
        try (Tensor buffer = digitBuffer(rows, k, bf16)) {
            MemorySegment digits = buffer == null ? null : written(buffer, in, bf16, rows, k);
            RowSplit.overPanels(name, n, PANEL, rows, (first, outputs) -> {
                MemorySegment bPart = bias == null ? MemorySegment.NULL : b.asSlice(first * element, outputs * element);
                MemorySegment wPart = w.asSlice(first * k, outputs * k), sPart = s.asSlice(first * 4, outputs * 4);
                MemorySegment yPart = out.asSlice(first * element);
                if (digits != null) DIGITS_PANELS.invokeExact(digits, bf16 ? 1 : 0, rows, k, wPart, sPart, bPart, outputs, yPart, n);
                else kernel.invokeExact(wPart, sPart, in, bPart, yPart, rows, outputs, k, n);
                if (picks != null) picks.merge(out, n, first, outputs, bf16);
            });
        }
        return y.view(Tensors.shapeWithLast(x, n));
    }

    /**
     * Room for x's digits where the panels multiply by digits, else null. They are written once for a
     * product, and each range of panels reads them, where each kernel call would write them again for
     * its range — a prompt's rows times every range. The same digits, so the same bits as the
     * kernel's own call.
     */
    private static Tensor digitBuffer(long rows, long k, boolean bf16) {
        if (products(bf16) != Int8Products.DIGITS) return null;
        long bytes;
        try {
            bytes = (long) DIGITS_BYTES.invokeExact(rows, k);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_int8_digits_bytes failed", t);
        }
        // 0: k past the digits' int32 sums, and the kernel multiplies by floats
        return bytes == 0 ? null : torch.empty(new long[]{bytes}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional());
    }

    /** x's digits written into {@code buffer} (libtorch's allocations start on 64-byte boundaries, as the kernel needs). */
    private static MemorySegment written(Tensor buffer, MemorySegment x, boolean bf16, long rows, long k) {
        MemorySegment at = NativeMemory.of(buffer);
        int status;
        try {
            status = (int) DIGITS_WRITE.invokeExact(x, bf16 ? 1 : 0, rows, k, at);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_int8_digits_write failed", t);
        }
        if (status != 0) throw new IllegalStateException("bt_int8_digits_write refused " + rows + " x " + k + " at " + at.address());
        return at;
    }

    /** Rows {@code ids} [...] (int64) of the int8 values packed in {@code panels}, as the row-major values': [..., k] int8. */
    public static Tensor values(Tensor panels, Tensor ids) {
        if (!packs(panels)) throw new IllegalArgumentException("int8_bf16_panels_values takes packed int8 values");
        long k = panels.size(1);
        return DensePanels.gathered(ids, panels.size(0), k, ScalarType.Char, "bt_int8_bf16_panels_values",
                (at, count, out) -> { VALUES.invokeExact(NativeMemory.of(panels), k, at, count, out); });
    }

    /**
     * Rows {@code ids} [...] (int64) of the int8 weight packed in {@code panels} with row {@code scales},
     * dequantized in {@code dtype} (bfloat16 or float32) as the row-major word embedding's lookup does:
     * [..., k].
     */
    public static Tensor rows(Tensor panels, Tensor scales, Tensor ids, ScalarType dtype) {
        if (!packs(panels)) throw new IllegalArgumentException("int8_bf16_panels_rows takes packed int8 values");
        return Int8PanelsRows.rows(panels, scales, ids, 2, dtype, "int8_bf16_panels_rows");
    }

    /** {@link #rows}' native gather, for a caller that checks the ids and owns the output. */
    public static RowGather gather(Tensor panels, Tensor scales, ScalarType dtype) {
        if (!packs(panels)) throw new IllegalArgumentException("int8_bf16_panels_rows takes packed int8 values");
        return Int8PanelsRows.gather(panels, scales, 2, dtype, "int8_bf16_panels_rows");
    }

    /** The native call {@link #forward} makes for {@code x2d}, for a native caller (whose split keeps to panels); null where it does not apply. */
    public static RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor scales, Tensor bias) {
        return applies(x2d, panels, scales, bias) ? RowKernel.int8(RowKernel.Call.INT8_PANELS, "bt_int8_bf16_panels_linear", panels, scales, bias, 0) : null;
    }
}
