package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;

/**
 * BLOOM's eager attention probabilities in bfloat16 by native/masked_softmax.c — HF's
 * {@code scores.to(float32).masked_fill(mask, lowest).softmax(-1).to(bfloat16)} in one pass per row
 * — and the scores' gradient from the probabilities'. Computed in float as libtorch does (exp from
 * the kernels' polynomial, so a rounded probability may land one bfloat16 step from libtorch's).
 * bfloat16 only: float32 models add the mask into the ALiBi bias and need none of this.
 */
public final class MaskedSoftmax {
    private static final FunctionDescriptor SIGNATURE = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT);
    private static final MethodHandle FORWARD = NativeKernels.available() ? NativeKernels.bind("bt_masked_softmax_bf16", SIGNATURE) : null;
    private static final MethodHandle FORWARD_ONLY = NativeKernels.available() ? NativeKernels.bind("bt_masked_softmax_bf16_forward_only", SIGNATURE) : null;
    private static final MethodHandle SCRATCH_ROW = FORWARD_ONLY == null ? null
            : NativeKernels.bind("bt_masked_softmax_scratch_row", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    private static final MethodHandle BACKWARD = NativeKernels.available() ? NativeKernels.bind("bt_masked_softmax_backward_bf16", SIGNATURE) : null;

    private MaskedSoftmax() {}

    /** The probabilities in float32 (what the backward reads) and rounded to bfloat16 (what the attention uses). */
    public record Probabilities(Tensor float32, Tensor bfloat16) {}

    /** True when the kernels are built and loaded on this platform. */
    public static boolean available() {
        return FORWARD != null;
    }

    /**
     * True when the kernel takes {@code scores} [B·heads, T, S] (bfloat16, contiguous, CPU) with
     * {@code mask} [B, 1, T, S] (bool, contiguous, CPU) for {@code heads} heads.
     */
    public static boolean applies(Tensor scores, Tensor mask, long heads) {
        if (FORWARD == null || heads < 1 || scores.dim() != 3 || mask.dim() != 4) return false;
        long[] m = Tensors.shape(mask);
        return scores.scalar_type().value == ScalarType.BFloat16.value && scores.is_contiguous() && scores.is_cpu()
                && mask.scalar_type().value == ScalarType.Bool.value && mask.is_contiguous() && mask.is_cpu()
                && m[1] == 1 && scores.size(0) == m[0] * heads && scores.size(1) == m[2] && scores.size(2) == m[3];
    }

    /** Softmax over the last dimension of the masked scores; call where {@link #applies}. */
    public static Probabilities forward(Tensor scores, Tensor mask, long heads) {
        require(applies(scores, mask, heads), scores, mask);
        Tensor probs = torch.empty(Tensors.shape(scores), new TensorOptions(ScalarType.Float), new MemoryFormatOptional());
        Tensor out = torch.empty_like(scores);
        call(FORWARD, scores, mask, probs, out, heads);
        return new Probabilities(probs, out);
    }

    /**
     * The bfloat16 probabilities of {@link #forward} alone, for a pass no backward follows: the
     * float32 ones go through one row per thread instead of a tensor of the scores' shape.
     */
    public static Tensor forwardOnly(Tensor scores, Tensor mask, long heads) {
        require(applies(scores, mask, heads), scores, mask);
        int threads = Math.max(1, torch.get_num_threads());
        Tensor out = torch.empty_like(scores);
        try (Tensor scratch = torch.empty(new long[]{threads, scratchRow(scores.size(2))}, new TensorOptions(ScalarType.Float), new MemoryFormatOptional())) {
            call(FORWARD_ONLY, scores, mask, scratch, out, heads, threads);
        }
        return out;
    }

    /** Floats per thread in the forward-only kernel's scratch for rows of {@code keys}: whole cache lines, as the kernel lays them out. */
    private static long scratchRow(long keys) {
        try {
            return (long) SCRATCH_ROW.invokeExact(keys);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to masked_softmax failed", t);
        }
    }

    /** The scores' gradient (bfloat16) from the bfloat16 probabilities' {@code grad} and the float32 {@code probs} of {@link #forward}. */
    public static Tensor backward(Tensor grad, Tensor probs, Tensor mask, long heads) {
        require(applies(grad, mask, heads) && probs.scalar_type().value == ScalarType.Float.value && probs.is_contiguous() && probs.is_cpu()
                && Arrays.equals(Tensors.shape(probs), Tensors.shape(grad)), grad, mask);
        Tensor out = torch.empty_like(grad);
        call(BACKWARD, grad, mask, probs, out, heads);
        return out;
    }

    /**
     * The kernels take (input, mask, probs, out): forward scores → probs and out (forward-only: probs
     * is one scratch row per thread), backward the probabilities' gradient and probs → out.
     */
    private static void call(MethodHandle kernel, Tensor input, Tensor mask, Tensor probs, Tensor out, long heads) {
        call(kernel, input, mask, probs, out, heads, Math.max(1, torch.get_num_threads()));
    }

    private static void call(MethodHandle kernel, Tensor input, Tensor mask, Tensor probs, Tensor out, long heads, int threads) {
        try {
            kernel.invokeExact(NativeMemory.of(input), NativeMemory.of(mask), NativeMemory.of(probs), NativeMemory.of(out),
                    mask.size(0), heads, mask.size(2), mask.size(3), threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to masked_softmax failed", t);
        }
    }

    private static void require(boolean ok, Tensor scores, Tensor mask) {
        if (!ok) {
            throw new IllegalArgumentException("masked_softmax takes contiguous CPU bfloat16 scores [B·heads, T, S] and a bool mask [B, 1, T, S], got "
                    + scores.scalar_type() + Tensors.shapeString(scores) + " and " + mask.scalar_type() + Tensors.shapeString(mask));
        }
    }
}
