package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * A layer norm of a decode step's few rows by the native step's own (native/decode_blocks.c: mean and
 * variance summed in double, the rest in float as libtorch's kernel): the embedding norm and ln_f
 * around the blocks, where libtorch's layer_norm costs more in its call than in its arithmetic.
 * Elsewhere the caller keeps libtorch's.
 */
public final class DecodeLayerNorm {
    private static final MethodHandle KERNEL = NativeKernels.available() ? NativeKernels.bind("bt_decode_layer_norm", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_DOUBLE, ValueLayout.JAVA_INT)) : null;

    private DecodeLayerNorm() {}

    /**
     * True for {@code x} [..., H] of at most {@link SerialOps#MAX_ROWS} rows outside autograd, and
     * weight and bias [H], all contiguous CPU float32 or all bfloat16.
     */
    public static boolean applies(Tensor x, Tensor weight, Tensor bias) {
        if (KERNEL == null || x.dim() < 1 || x.requires_grad() || weight.dim() != 1) return false;
        int type = x.scalar_type().value;
        long h = weight.size(0);
        return (type == ScalarType.Float.value || type == ScalarType.BFloat16.value) && x.size(-1) == h && x.numel() > 0
                && x.numel() / h <= SerialOps.MAX_ROWS && plain(x, type) && plain(weight, type) && plain(bias, type)
                && bias.dim() == 1 && bias.size(0) == h;
    }

    /** The layer norm of {@code x} over its last axis, in a new tensor of its shape; call where {@link #applies}. */
    public static Tensor forward(Tensor x, Tensor weight, Tensor bias, double eps) {
        if (!applies(x, weight, bias)) throw new IllegalArgumentException("decode_layer_norm does not take these tensors");
        long h = weight.size(0);
        Tensor y = torch.empty_like(x, x.options(), new MemoryFormatOptional());
        try {
            KERNEL.invokeExact(NativeMemory.of(x), NativeMemory.of(weight), NativeMemory.of(bias), NativeMemory.of(y), x.numel() / h, h, eps,
                    x.scalar_type().value == ScalarType.BFloat16.value ? 1 : 0);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_decode_layer_norm failed", t);
        }
        return y;
    }

    private static boolean plain(Tensor t, int type) {
        return t.scalar_type().value == type && t.is_cpu() && t.is_contiguous() && !t.requires_grad();
    }
}
