package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * A frozen int8 weight with row scales laid out for LLM.int8 inference by native/llm_int8_panels.c:
 * panels of {@link #PANEL} output rows with each four bytes of k side by side ({@link DensePanels}'
 * order with 4-byte words), kept instead of the row-major values. {@link #forward} is the whole
 * LLM.int8 product — quantize x, int8 × int8 in int32, rescale, outlier columns in float, bias — for
 * any number of rows, the same bits as {@link LlmInt8Rows} gives at a decode step's few. The packed
 * tensor has the values' shape and size, its bytes reordered. Where the CPU lacks AVX512-VNNI nothing
 * is packed.
 */
public final class LlmInt8Panels {
    /** Output rows per panel: a weight packs when its row count is a multiple of this. */
    public static final long PANEL = 32;

    private static final MethodHandle KERNEL = NativeKernels.bindIfSupported("bt_llm_int8_panels_supported", "bt_llm_int8_panels_linear",
            LlmInt8Rows.SIGNATURE);
    private static final MethodHandle PACK = KERNEL == null ? null : NativeKernels.bind("bt_llm_int8_panels_pack", NativeKernels.PACK);
    private static final MethodHandle VALUES = KERNEL == null ? null : NativeKernels.bind("bt_llm_int8_panels_values", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    private LlmInt8Panels() {}

    /** True when this CPU has AVX512-VNNI and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /** True when {@code values} can be packed: a contiguous int8 CPU matrix with a multiple of {@link #PANEL} rows and of four columns. */
    public static boolean packs(Tensor values) {
        return KERNEL != null && values.scalar_type().value == ScalarType.Char.value && values.is_cpu() && values.is_contiguous()
                && values.dim() == 2 && values.size(0) > 0 && values.size(0) % PANEL == 0 && values.size(1) > 0 && values.size(1) % 4 == 0;
    }

    /** {@code values} [n, k] in panels: a new tensor of the same shape; call where {@link #packs}. */
    public static Tensor pack(Tensor values) {
        if (!packs(values)) throw new IllegalArgumentException("llm_int8_panels cannot pack these values");
        return NativeKernels.packed(PACK, "bt_llm_int8_panels_pack", values);
    }

    /**
     * True when {@link #forward} takes {@code x} [..., in] float32 or bfloat16 (contiguous, CPU, outside
     * autograd) times {@code panels} [out, in] with {@code scales} [out] float32, plus {@code bias} [out]
     * in x's dtype (or null).
     */
    public static boolean applies(Tensor x, Tensor panels, Tensor scales, Tensor bias) {
        if (KERNEL == null || !packs(panels) || x.requires_grad() || !x.is_cpu() || !x.is_contiguous()) return false;
        int type = x.scalar_type().value;
        if (type != ScalarType.Float.value && type != ScalarType.BFloat16.value || x.size(-1) != panels.size(1) || x.numel() == 0) return false;
        if (scales.dim() != 1 || scales.scalar_type().value != ScalarType.Float.value || !scales.is_contiguous() || !scales.is_cpu()
                || scales.size(0) != panels.size(0)) return false;
        return bias == null || bias.dim() == 1 && bias.size(0) == panels.size(0) && bias.scalar_type().value == type
                && bias.is_contiguous() && bias.is_cpu();
    }

    /**
     * {@code x} [..., in] → [..., out] in x's dtype: LLM.int8 with outlier {@code threshold} against the
     * packed weight, plus {@code bias}; each range of outputs merged into {@code picks} (one per row of
     * x, or null) by the thread that writes it. Call only where {@link #applies}.
     */
    public static Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias, double threshold, RowsArgmax.Picks picks) {
        if (!applies(x, panels, scales, bias)) throw new IllegalArgumentException("llm_int8_panels_linear does not take these tensors");
        Tensor y = LlmInt8Rows.product(KERNEL, "bt_llm_int8_panels_linear",
                (kernel, n, range) -> RowSplit.overPanelsInShares(kernel, n, PANEL, range), x, panels, scales, bias, threshold, picks);
        return y.view(Tensors.shapeWithLast(x, panels.size(0)));
    }

    /** Rows {@code ids} [...] (int64) of the int8 values packed in {@code panels}, as the row-major values': [..., k] int8. */
    public static Tensor values(Tensor panels, Tensor ids) {
        if (!packs(panels)) throw new IllegalArgumentException("llm_int8_panels_values takes packed int8 values");
        long k = panels.size(1);
        return DensePanels.gathered(ids, panels.size(0), k, ScalarType.Char, "bt_llm_int8_panels_values",
                (at, count, out) -> { VALUES.invokeExact(NativeMemory.of(panels), k, at, count, out); });
    }

    /**
     * Rows {@code ids} [...] (int64) of the int8 weight packed in {@code panels} with row {@code scales},
     * dequantized in {@code dtype} (float32 or bfloat16) as the row-major word embedding's lookup does:
     * [..., k].
     */
    public static Tensor rows(Tensor panels, Tensor scales, Tensor ids, ScalarType dtype) {
        if (!packs(panels)) throw new IllegalArgumentException("llm_int8_panels_rows takes packed int8 values");
        return Int8PanelsRows.rows(panels, scales, ids, 4, dtype, "llm_int8_panels_rows");
    }

    /** {@link #rows}' native gather, for a caller that checks the ids and owns the output. */
    public static RowGather gather(Tensor panels, Tensor scales, ScalarType dtype) {
        if (!packs(panels)) throw new IllegalArgumentException("llm_int8_panels_rows takes packed int8 values");
        return Int8PanelsRows.gather(panels, scales, 4, dtype, "llm_int8_panels_rows");
    }

    /** The native call {@link #forward} makes for {@code x2d}, for a native caller (whose split keeps to panels); null where it does not apply. */
    public static RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor scales, Tensor bias, double threshold) {
        return applies(x2d, panels, scales, bias)
                ? RowKernel.int8(RowKernel.Call.LLM_INT8_PANELS, "bt_llm_int8_panels_linear", panels, scales, bias, threshold) : null;
    }
}
