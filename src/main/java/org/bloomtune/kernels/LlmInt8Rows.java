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
 * LLM.int8's product for a decode step's few rows — quantize, int8 product, rescale, outlier
 * columns, cast, bias — as one native call per range of weight rows (native/llm_int8_rows_linear.c),
 * the ranges split over libtorch's thread count. The op-by-op path allocates and dispatches about
 * ten tensors per linear, which at one to eight rows costs as much as reading the weight.
 */
public final class LlmInt8Rows {
    /** Rows of x the kernel takes: a decode batch (the C side's MAX_ROWS). */
    public static final int MAX_ROWS = 8;

    /** {@code f(x, type, rows, k, threshold, values, scales, bias, n, y, ldy)}: LLM.int8's one-call products (this and {@link LlmInt8Panels}). */
    static final FunctionDescriptor SIGNATURE = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);

    private static final MethodHandle KERNEL = NativeKernels.bindIfSupported("bt_llm_int8_rows_supported", "bt_llm_int8_rows_linear", SIGNATURE);

    private LlmInt8Rows() {}

    /**
     * True when the kernel takes {@code x2d} [rows ≤ {@link #MAX_ROWS}, in] (float32 or bfloat16,
     * CPU, outside autograd) times {@code values} [out, in] int8 with {@code scales} [out] float32.
     */
    public static boolean applies(Tensor x2d, Tensor values, Tensor scales) {
        if (KERNEL == null || x2d.dim() != 2 || x2d.requires_grad() || !x2d.is_cpu()) return false;
        int type = x2d.scalar_type().value;
        if (type != ScalarType.Float.value && type != ScalarType.BFloat16.value) return false;
        if (values.dim() != 2 || values.scalar_type().value != ScalarType.Char.value || !values.is_contiguous() || !values.is_cpu()) return false;
        if (scales.dim() != 1 || scales.scalar_type().value != ScalarType.Float.value || !scales.is_contiguous()
                || scales.size(0) != values.size(0)) return false;
        return x2d.size(0) >= 1 && x2d.size(0) <= MAX_ROWS && x2d.size(1) == values.size(1) && values.size(1) > 0;
    }

    /**
     * True when {@link #forward} adds {@code bias} in its own pass: [out] in x's dtype, contiguous, CPU.
     * Otherwise the caller adds it after.
     */
    public static boolean takesBias(Tensor x2d, Tensor values, Tensor bias) {
        return bias.dim() == 1 && bias.size(0) == values.size(0) && bias.scalar_type().value == x2d.scalar_type().value
                && bias.is_contiguous() && bias.is_cpu();
    }

    /** The native call {@link #forward} makes for {@code x2d} (+ bias or null), for a native caller; null where it does not apply. */
    public static RowKernel rowKernel(Tensor x2d, Tensor values, Tensor scales, Tensor bias, double threshold) {
        if (!applies(x2d, values, scales) || (bias != null && !takesBias(x2d, values, bias))) return null;
        return RowKernel.int8(RowKernel.Call.LLM_INT8, "bt_llm_int8_rows_linear", values, scales, bias, threshold);
    }

    /**
     * {@code x2d} [rows, in] → [rows, out] in x's dtype, LLM.int8 with {@code threshold}, plus
     * {@code bias} (null for none; else one {@link #takesBias} accepts); call only where {@link #applies}.
     */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales, Tensor bias, double threshold) {
        return forward(x2d, values, scales, bias, threshold, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x2d, Tensor values, Tensor scales, Tensor bias, double threshold, RowsArgmax.Picks picks) {
        if (!applies(x2d, values, scales) || (bias != null && !takesBias(x2d, values, bias))) {
            throw new IllegalArgumentException("llm_int8_rows_linear does not take these tensors");
        }
        Tensor x = x2d.contiguous();
        return product(KERNEL, "bt_llm_int8_rows_linear", RowSplit::overWeightRowsInShares, x, values, scales, bias, threshold, picks);
    }

    /** How a product's n weight rows are shared among the kernels' threads (whole shares: each call quantizes x). */
    @FunctionalInterface
    interface Shares {
        void run(String kernel, long n, RowSplit.Range range);
    }

    /**
     * One of LLM.int8's one-call products ({@link #SIGNATURE}) of contiguous {@code x} [rows, k] (any
     * leading shape) and {@code weight} [n, k] (row-major values or panels) with row {@code scales} and
     * {@code bias} (or null): [rows, n] in x's dtype, each range of outputs merged into {@code picks}
     * (or null) by the thread that writes it.
     */
    static Tensor product(MethodHandle kernel, String name, Shares shares, Tensor x, Tensor weight, Tensor scales, Tensor bias,
                          double threshold, RowsArgmax.Picks picks) {
        int type = x.scalar_type().value == ScalarType.Float.value ? 0 : 1;
        long n = weight.size(0);
        long k = weight.size(1);
        long rows = x.numel() / k;
        long outBytes = x.element_size();
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment in = NativeMemory.of(x);
        MemorySegment w = NativeMemory.of(weight);
        MemorySegment s = NativeMemory.of(scales);
        MemorySegment b = NativeMemory.ofNullable(bias);
        MemorySegment out = NativeMemory.of(y);
        float limit = (float) threshold;
        shares.run(name, n, (from, count) -> {
            MemorySegment partBias = bias == null ? MemorySegment.NULL : b.asSlice(from * outBytes, count * outBytes);
            int status = (int) kernel.invokeExact(in, type, rows, k, limit, w.asSlice(from * k, count * k),
                    s.asSlice(from * 4, count * 4), partBias, count, out.asSlice(from * outBytes), n);
            if (status != 0) throw new OutOfMemoryError(name + ": no scratch memory for " + rows + " × " + k);
            if (picks != null) picks.merge(out, n, from, count, type == 1);
        });
        return y;
    }
}
