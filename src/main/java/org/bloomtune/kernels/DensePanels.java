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
 * A frozen bfloat16 or float32 linear weight laid out for inference by native/bf16_panels.c or
 * native/f32_panels.c: panels of {@link #PANEL} output rows with each element the product's lane
 * multiplies (a pair of k in bfloat16, one k in float32) side by side — for bfloat16 the order the
 * bfloat16 GEMM packs a weight into before every product — kept instead of the row-major weight.
 * {@link #forward} then reads it once front to back for any number of rows (a decode batch at the
 * memory's rate; a prefill eight rows at a time per panel, which stays in L2 meanwhile). The packed
 * tensor has the weight's shape, dtype and size, its elements reordered. Where the CPU lacks the
 * dtype's instructions (AVX512_BF16; AVX-512F) nothing of that dtype is packed.
 */
public final class DensePanels {
    /** Output rows per panel: a weight packs when its row count is a multiple of this. */
    public static final long PANEL = 32;

    /** One dtype's kernels: the product, the packing and the rows' lookup, with the C names errors cite. */
    private record Kind(ScalarType type, long elementBytes, long kMultiple, String linearName, MethodHandle linear, String packName,
                        MethodHandle pack, String rowsName, MethodHandle rows) {

        static Kind bind(ScalarType type, long elementBytes, long kMultiple, String supported, String prefix) {
            MethodHandle linear = DenseRows.bindIfSupported(supported, prefix + "_linear");
            if (linear == null) return null;
            return new Kind(type, elementBytes, kMultiple, prefix + "_linear", linear, prefix + "_pack",
                    NativeKernels.bind(prefix + "_pack", NativeKernels.PACK), prefix + "_rows", NativeKernels.bind(prefix + "_rows",
                    FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS)));
        }

        boolean bf16() { return type == ScalarType.BFloat16; }
    }

    private static final Kind BF16 = Kind.bind(ScalarType.BFloat16, 2, 2, "bt_bf16_rows_supported", "bt_bf16_panels");

    static {
        Bf16Gemm.products();    // the bfloat16 panels multiply as the GEMM does: chosen (or measured) here, before any product runs
    }
    private static final Kind F32 = Kind.bind(ScalarType.Float, 4, 1, "bt_f32_rows_supported", "bt_f32_panels");

    private DensePanels() {}

    /** The kernels of {@code t}'s dtype, or null where there are none (another dtype, or this CPU lacks the instructions). */
    private static Kind kind(Tensor t) {
        int type = t.scalar_type().value;
        return type == ScalarType.BFloat16.value ? BF16 : type == ScalarType.Float.value ? F32 : null;
    }

    /** True when this CPU runs the panels of {@code type} (bfloat16: AVX512_BF16; float32: AVX-512F) and the kernels are built. */
    public static boolean supported(ScalarType type) {
        return (type == ScalarType.BFloat16 ? BF16 : type == ScalarType.Float ? F32 : null) != null;
    }

    /**
     * True when {@code weight} can be packed: a contiguous bfloat16 or float32 CPU matrix outside
     * autograd with a multiple of {@link #PANEL} rows and a non-zero column count (even for bfloat16),
     * on a CPU that runs the dtype's kernel.
     */
    public static boolean packs(Tensor weight) {
        Kind kind = kind(weight);
        return kind != null && weight.is_cpu() && weight.is_contiguous() && !weight.requires_grad() && weight.dim() == 2
                && weight.size(0) > 0 && weight.size(0) % PANEL == 0 && weight.size(1) > 0 && weight.size(1) % kind.kMultiple() == 0;
    }

    /** {@code weight} [n, k] in panels: a new tensor of the same shape; call where {@link #packs}. */
    public static Tensor pack(Tensor weight) {
        if (!packs(weight)) throw new IllegalArgumentException("dense panels cannot pack this weight");
        Kind kind = kind(weight);
        return NativeKernels.packed(kind.pack(), kind.packName(), weight);
    }

    /** True when {@link #forward} takes {@code x} [..., in] times {@code panels} [out, in] (+ {@code bias} [out] or null), all of one dtype. */
    public static boolean applies(Tensor x, Tensor panels, Tensor bias) {
        Kind kind = kind(panels);
        return kind != null && panels.size(0) % PANEL == 0 && DenseRows.rows(x, panels, bias, kind.type()) >= 1;
    }

    /** {@code x} [..., in] → [..., out] in x's dtype, x times the packed weight plus bias; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor bias) {
        return forward(x, panels, bias, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor bias, RowsArgmax.Picks picks) {
        if (!applies(x, panels, bias)) throw new IllegalArgumentException("dense panels' linear does not take these tensors");
        Kind kind = kind(panels);
        long e = kind.elementBytes();
        long n = panels.size(0);
        long k = panels.size(1);
        long rows = x.numel() / k;
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.of(panels);
        MemorySegment in = NativeMemory.of(x);
        MemorySegment b = NativeMemory.ofNullable(bias);
        MemorySegment out = NativeMemory.of(y);
        RowSplit.overPanels(kind.linearName(), n, PANEL, rows, (first, outputs) -> {
            MemorySegment bPart = bias == null ? MemorySegment.NULL : b.asSlice(first * e, outputs * e);
            kind.linear().invokeExact(w.asSlice(first * k * e, outputs * k * e), in, bPart, out.asSlice(first * e), rows, outputs, k, n);
            if (picks != null) picks.merge(out, n, first, outputs, kind.bf16());
        });
        return y.view(Tensors.shapeWithLast(x, n));
    }

    /** Rows {@code ids} [...] (int64) of the weight packed in {@code panels}, as the row-major weight's: [..., k] of its dtype. */
    public static Tensor rows(Tensor panels, Tensor ids) {
        RowGather gather = gather(panels);
        Kind kind = kind(panels);
        return gathered(ids, panels.size(0), panels.size(1), kind.type(), kind.rowsName(), gather);
    }

    /** {@link #rows}' native gather over {@code panels}, for a caller that checks the ids and owns the output. */
    public static RowGather gather(Tensor panels) {
        if (!packs(panels)) throw new IllegalArgumentException("dense panels' rows take a packed weight");
        Kind kind = kind(panels);
        MemorySegment weight = NativeMemory.of(panels);
        long k = panels.size(1);
        return (ids, count, out) -> { kind.rows().invokeExact(weight, k, ids, count, out); };
    }

    /**
     * Rows {@code ids} [...] of {@code k} elements of {@code type} from a matrix of {@code n} rows by
     * {@code gather} ({@code name} in errors): every id is checked to lie in [0, n) before a row is read.
     */
    static Tensor gathered(Tensor ids, long n, long k, ScalarType type, String name, RowGather gather) {
        try (Tensor at = ids.to(ScalarType.Long).contiguous()) {
            if (!at.is_cpu()) throw new IllegalArgumentException(name + " takes ids on the CPU");
            for (long id : Tensors.toLongs(at)) {
                if (id < 0 || id >= n) throw new IllegalArgumentException(name + ": row " + id + " is outside [0, " + n + ")");
            }
            long[] shape = new long[(int) ids.dim() + 1];
            for (int d = 0; d < ids.dim(); d++) shape[d] = ids.size(d);
            shape[shape.length - 1] = k;
            Tensor out;
            try (TensorOptions options = new TensorOptions(type)) {
                out = torch.empty(shape, options, new MemoryFormatOptional());
            }
            try {
                gather.rows(NativeMemory.of(at), at.numel(), NativeMemory.of(out));
            } catch (Throwable t) {
                out.close();
                throw new IllegalStateException("FFM call to " + name + " failed", t);
            }
            return out;
        }
    }

    /** The native call {@link #forward} makes for {@code x2d}, for a native caller (whose split keeps to panels); null where it does not apply. */
    public static RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor bias) {
        if (!applies(x2d, panels, bias)) return null;
        Kind kind = kind(panels);
        return RowKernel.dense(kind == BF16 ? RowKernel.Call.BF16_PANELS : RowKernel.Call.DENSE, kind.linearName(), panels, bias);
    }
}
