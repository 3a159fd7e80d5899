package org.bloomtune.kernels;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.invoke.MethodHandle;

/**
 * The weight-only int8 mode with float32 activations against the panels {@link Int8Bf16Panels} packs
 * (native/int8_f32_panels.c): each 64-byte line of a panel is widened once for every row of x, so a
 * decode batch reads and widens the weight once — or, where the panels multiply by digits
 * ({@link Int8Products}), x's digits meet the int8 lines by VNNI. The layout — packing, rows by id — is
 * {@link Int8Bf16Panels}'; this class only multiplies. Supported where that layout is and the CPU
 * has AVX-512 VBMI.
 */
public final class Int8F32Panels {
    private static final MethodHandle KERNEL = Int8Bf16Panels.supported() ? NativeKernels.bindIfSupported(
            "bt_int8_f32_panels_supported", "bt_int8_f32_panels_linear", NativeKernels.INT8_PANELS_LINEAR) : null;

    private Int8F32Panels() {}

    /** True when this CPU packs {@link Int8Bf16Panels} and has the float32 product's kernel. */
    public static boolean supported() { return KERNEL != null; }

    /** How the weight-only panels multiply float32 rows ({@link Int8Products#FLOATS} where nothing packs). */
    public static Int8Products products() { return Int8Bf16Panels.products(false); }

    /**
     * True when {@link #forward} takes {@code x} [..., in] float32 (contiguous, CPU, outside autograd)
     * times {@code panels} [out, in] with {@code scales} [out] float32, plus {@code bias} [out] float32 (or null).
     */
    public static boolean applies(Tensor x, Tensor panels, Tensor scales, Tensor bias) {
        if (KERNEL == null || !Int8Bf16Panels.packs(panels) || x.requires_grad() || !x.is_cpu() || !x.is_contiguous()) return false;
        if (x.scalar_type().value != ScalarType.Float.value || x.size(-1) != panels.size(1) || x.numel() == 0) return false;
        return isFloatVector(scales, panels.size(0)) && (bias == null || isFloatVector(bias, panels.size(0)));
    }

    private static boolean isFloatVector(Tensor t, long n) {
        return t.dim() == 1 && t.size(0) == n && t.scalar_type().value == ScalarType.Float.value && t.is_contiguous() && t.is_cpu();
    }

    /** {@code x} [..., in] → [..., out] in float32: x times the packed weight, by row scale, plus bias; call only where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias) {
        return forward(x, panels, scales, bias, null);
    }

    /** {@link #forward}, each range of outputs merged into {@code picks} (one per row of x, or null) by the thread that writes it. */
    public static Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias, RowsArgmax.Picks picks) {
        if (!applies(x, panels, scales, bias)) throw new IllegalArgumentException("int8_f32_panels_linear does not take these tensors");
        return Int8Bf16Panels.product(KERNEL, "bt_int8_f32_panels_linear", x, panels, scales, bias, picks);
    }

    /** The native call {@link #forward} makes for {@code x2d}, for a native caller (whose split keeps to panels); null where it does not apply. */
    public static RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor scales, Tensor bias) {
        return applies(x2d, panels, scales, bias) ? RowKernel.int8(RowKernel.Call.INT8_PANELS, "bt_int8_f32_panels_linear", panels, scales, bias, 0) : null;
    }
}
