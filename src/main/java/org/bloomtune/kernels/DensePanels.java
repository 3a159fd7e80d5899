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
 * A frozen bfloat16 linear weight laid out for inference by native/bf16_panels.c: panels of
 * {@link #PANEL} output rows with each pair of k side by side, the order the bfloat16 GEMM packs
 * a weight into before every product, kept instead of the row-major weight. {@link #forward} then
 * reads it once front to back for any number of rows (a decode batch of up to eight at the memory's
 * rate; a prefill eight rows at a time per panel). The packed tensor has the weight's shape and
 * size, its elements reordered. Where the CPU lacks AVX512_BF16 nothing is packed.
 */
public final class Bf16Panels {
    /** Output rows per panel: a weight packs when its row count is a multiple of this. */
    public static final long PANEL = 32;

    private static final MethodHandle KERNEL = DenseRows.bindIfSupported("bt_bf16_rows_supported", "bt_bf16_panels_linear");
    private static final MethodHandle PACK = KERNEL == null ? null : NativeKernels.bind("bt_bf16_panels_pack", NativeKernels.PACK);
    private static final MethodHandle ROWS = KERNEL == null ? null : NativeKernels.bind("bt_bf16_panels_rows", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    private Bf16Panels() {}

    /** True when this CPU has AVX512_BF16 and the kernels are built. */
    public static boolean supported() { return KERNEL != null; }

    /**
     * True when {@code weight} can be packed: a contiguous bfloat16 CPU matrix outside autograd with a
     * multiple of {@link #PANEL} rows and an even, non-zero column count, on a CPU that runs the kernel.
     */
    public static boolean packs(Tensor weight) {
        return KERNEL != null && plain(weight) && weight.dim() == 2 && weight.size(0) > 0 && weight.size(0) % PANEL == 0
                && weight.size(1) > 0 && weight.size(1) % 2 == 0;
    }

    /** {@code weight} [n, k] in panels: a new tensor of the same shape; call where {@link #packs}. */
    public static Tensor pack(Tensor weight) {
        if (!packs(weight)) throw new IllegalArgumentException("bf16_panels cannot pack this weight");
        return NativeKernels.packed(PACK, "bt_bf16_panels_pack", weight);
    }

    /** True when {@link #forward} takes {@code x} [..., in] times {@code panels} [out, in] (+ {@code bias} [out] or null). */
    public static boolean applies(Tensor x, Tensor panels, Tensor bias) {
        return KERNEL != null && panels.size(0) % PANEL == 0 && DenseRows.rows(x, panels, bias, ScalarType.BFloat16) >= 1;
    }

    /** {@code x} [..., in] → [..., out] in bfloat16, x times the packed weight plus bias; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor bias) {
        return forward(x, panels, bias, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor bias, RowsArgmax.Picks picks) {
        if (!applies(x, panels, bias)) throw new IllegalArgumentException("bf16_panels_linear does not take these tensors");
        long n = panels.size(0);
        long k = panels.size(1);
        long rows = x.numel() / k;
        Tensor y = torch.empty(new long[]{rows, n}, x.options(), new MemoryFormatOptional());
        MemorySegment w = NativeMemory.of(panels);
        MemorySegment in = NativeMemory.of(x);
        MemorySegment b = NativeMemory.ofNullable(bias);
        MemorySegment out = NativeMemory.of(y);
        RowSplit.overPanels("bt_bf16_panels_linear", n, PANEL, rows, (first, outputs) -> {
            MemorySegment bPart = bias == null ? MemorySegment.NULL : b.asSlice(first * 2, outputs * 2);
            KERNEL.invokeExact(w.asSlice(first * k * 2, outputs * k * 2), in, bPart, out.asSlice(first * 2), rows, outputs, k, n);
            if (picks != null) picks.merge(out, n, first, outputs, true);
        });
        return y.view(Tensors.shapeWithLast(x, n));
    }

    /** Rows {@code ids} [...] (int64) of the weight packed in {@code panels}, as the row-major weight's: [..., k] bfloat16. */
    public static Tensor rows(Tensor panels, Tensor ids) {
        if (!packs(panels)) throw new IllegalArgumentException("bf16_panels_rows takes a packed bfloat16 weight");
        long k = panels.size(1);
        return gathered(ids, panels.size(0), k, ScalarType.BFloat16, "bt_bf16_panels_rows",
                (at, count, out) -> { ROWS.invokeExact(NativeMemory.of(panels), k, at, count, out); });
    }

    /** A native gather of rows from panels: the checked ids, how many, and where their rows go. */
    interface Gather {
        void run(MemorySegment ids, long count, MemorySegment out) throws Throwable;
    }

    /**
     * Rows {@code ids} [...] of {@code k} elements of {@code type} from a matrix of {@code n} rows by
     * {@code gather} ({@code name} in errors): every id is checked to lie in [0, n) before a row is read.
     */
    static Tensor gathered(Tensor ids, long n, long k, ScalarType type, String name, Gather gather) {
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
                gather.run(NativeMemory.of(at), at.numel(), NativeMemory.of(out));
            } catch (Throwable t) {
                out.close();
                throw new IllegalStateException("FFM call to " + name + " failed", t);
            }
            return out;
        }
    }

    /** The native call {@link #forward} makes for {@code x2d}, for a native caller (whose split keeps to panels); null where it does not apply. */
    public static RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor bias) {
        return applies(x2d, panels, bias) ? RowKernel.dense("bt_bf16_panels_linear", panels, bias) : null;
    }

    private static boolean plain(Tensor t) {
        return t.scalar_type().value == ScalarType.BFloat16.value && t.is_cpu() && t.is_contiguous() && !t.requires_grad();
    }
}
