package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * BLOOM's eager attention over a call's own keys (no cache, no prefix) in one native kernel, from
 * the fused QKV projection to the merged heads and back: the ALiBi scores, HF's masked
 * probabilities and the attended values, one (row, head) pair at a time, in place of libtorch's
 * head split, six batched products and merge. In bfloat16 (native/attention_bf16.c, CPUs with
 * AVX512_BF16) each product is rounded where libtorch's is; in float32 (native/attention_f32.c,
 * CPUs with AVX-512F) nothing is rounded between the ops, as in libtorch's chain. Only the order of
 * the float32 sums differs. Products skip what the mask makes zero (about half under a causal
 * mask), and the backward forms the probabilities again instead of keeping a [B·heads, T, T]
 * tensor per layer. Elsewhere the caller keeps libtorch's ops.
 */
public final class WholeAttention {
    private static final Kernel BF16 = Kernel.bind("bt_bf16_rows_supported", "bf16");
    private static final Kernel F32 = Kernel.bind("bt_f32_gemm_supported", "f32");

    private WholeAttention() {}

    /** One dtype's three entry points, or null where the kernels are not built or the CPU lacks what they need. */
    private record Kernel(String name, MethodHandle forward, MethodHandle backward, MethodHandle scratchBytes) {
        static Kernel bind(String supported, String suffix) {
            ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
            ValueLayout a = ValueLayout.ADDRESS;
            String name = "bt_attention_" + suffix;
            MethodHandle forward = NativeKernels.bindIfSupported(supported, name + "_forward",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, a, a, a, a, a, l, l, l, l, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_INT));
            if (forward == null) return null;
            return new Kernel(name, forward,
                    NativeKernels.bind(name + "_backward",
                            FunctionDescriptor.of(ValueLayout.JAVA_INT, a, a, a, a, a, a, l, l, l, l, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_INT)),
                    NativeKernels.bind(name + "_scratch_bytes", FunctionDescriptor.of(l, l, l)));
        }
    }

    /** True when the kernels for {@code type} (bfloat16 or float32) are built and this CPU runs them. */
    public static boolean available(ScalarType type) {
        return kernel(type) != null;
    }

    private static Kernel kernel(ScalarType type) {
        if (type.value == ScalarType.BFloat16.value) return BF16;
        return type.value == ScalarType.Float.value ? F32 : null;
    }

    /**
     * True when a kernel takes {@code fusedQkv} [B, T, heads · 3 · head_dim] (bfloat16 with an even
     * head_dim, or float32; per head q, k, v side by side), {@code alibi} [B · heads, 1, T] of the same
     * dtype and {@code mask} [B, 1, T, T] (bool), all contiguous on the CPU.
     */
    public static boolean applies(Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        if (heads < 1 || fusedQkv.dim() != 3 || alibi.dim() != 3 || mask.dim() != 4) return false;
        ScalarType type = fusedQkv.scalar_type();
        if (!available(type)) return false;
        long batch = fusedQkv.size(0), positions = fusedQkv.size(1), width = fusedQkv.size(2);
        if (width % (3 * heads) != 0 || (type.value == ScalarType.BFloat16.value && (width / (3 * heads)) % 2 != 0)) return false;
        return cpu(fusedQkv, type) && cpu(alibi, type) && alibi.size(0) == batch * heads && alibi.size(1) == 1 && alibi.size(2) == positions
                && mask.scalar_type().value == ScalarType.Bool.value && mask.is_contiguous() && mask.is_cpu()
                && mask.size(0) == batch && mask.size(1) == 1 && mask.size(2) == positions && mask.size(3) == positions;
    }

    /** The merged heads [B, T, heads · head_dim] in the fused QKV's dtype; call where {@link #applies}. */
    public static Tensor forward(Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        require(applies(fusedQkv, alibi, mask, heads), fusedQkv, alibi, mask);
        Kernel kernel = kernel(fusedQkv.scalar_type());
        long batch = fusedQkv.size(0), positions = fusedQkv.size(1), headDim = headDim(fusedQkv, heads);
        Tensor merged = torch.empty(new long[]{batch, positions, heads * headDim}, fusedQkv.options(), new MemoryFormatOptional());
        int threads = threads();
        int status;
        try (Tensor scratch = scratch(kernel, positions, headDim, threads)) {
            status = (int) kernel.forward().invokeExact(NativeMemory.of(fusedQkv), NativeMemory.of(alibi), NativeMemory.of(mask),
                    NativeMemory.of(merged), NativeMemory.of(scratch), batch, heads, positions, headDim, alpha(headDim), threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to " + kernel.name() + "_forward failed", t);
        }
        check(status, kernel, "forward");
        return merged;
    }

    /**
     * The fused QKV's gradient [B, T, heads · 3 · head_dim] from the merged heads' {@code grad} (the
     * fused QKV's dtype) and the forward's inputs (the probabilities are formed again, bit for bit,
     * rather than kept).
     */
    public static Tensor backward(Tensor grad, Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        boolean ok = applies(fusedQkv, alibi, mask, heads) && cpu(grad, fusedQkv.scalar_type()) && grad.dim() == 3
                && grad.size(0) == fusedQkv.size(0) && grad.size(1) == fusedQkv.size(1) && grad.size(2) * 3 == fusedQkv.size(2);
        if (!ok) {
            throw new IllegalArgumentException("the attention's backward takes a contiguous CPU gradient [B, T, H] of the fused QKV's dtype "
                    + fusedQkv.scalar_type() + Tensors.shapeString(fusedQkv) + ", got " + grad.scalar_type() + Tensors.shapeString(grad));
        }
        Kernel kernel = kernel(fusedQkv.scalar_type());
        long batch = fusedQkv.size(0), positions = fusedQkv.size(1), headDim = headDim(fusedQkv, heads);
        Tensor dQkv = torch.empty_like(fusedQkv);
        int threads = threads();
        int status;
        try (Tensor scratch = scratch(kernel, positions, headDim, threads)) {
            status = (int) kernel.backward().invokeExact(NativeMemory.of(fusedQkv), NativeMemory.of(alibi), NativeMemory.of(mask),
                    NativeMemory.of(grad), NativeMemory.of(dQkv), NativeMemory.of(scratch), batch, heads, positions, headDim,
                    alpha(headDim), threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to " + kernel.name() + "_backward failed", t);
        }
        check(status, kernel, "backward");
        return dQkv;
    }

    /**
     * The bytes of scratch one thread takes for a call over {@code positions} positions of heads of
     * {@code headDim} in {@code type} (0 where no kernel runs): what a memory estimate counts per thread.
     */
    public static long scratchBytesPerThread(ScalarType type, long positions, long headDim) {
        Kernel kernel = kernel(type);
        return kernel == null ? 0 : NativeKernels.scratchBytes(kernel.scratchBytes(), kernel.name() + "_scratch_bytes", positions, headDim);
    }

    /** Each thread's buffers for one (row, head) pair at a time: a few of [T, T] and [T, head_dim]. */
    private static Tensor scratch(Kernel kernel, long positions, long headDim, int threads) {
        return NativeKernels.threadScratch(kernel.scratchBytes(), kernel.name() + "_scratch_bytes", positions, headDim, threads);
    }

    /** HF's 1 / √head_dim, as baddbmm applies it in float. */
    private static float alpha(long headDim) {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    private static long headDim(Tensor fusedQkv, long heads) {
        return fusedQkv.size(2) / (3 * heads);
    }

    private static boolean cpu(Tensor t, ScalarType type) {
        return t.scalar_type().value == type.value && t.is_contiguous() && t.is_cpu();
    }

    private static int threads() { return Math.max(1, torch.get_num_threads()); }

    private static void check(int status, Kernel kernel, String pass) {
        if (status != 0) throw new OutOfMemoryError(kernel.name() + " " + pass + ": no memory for the mask's tables");
    }

    private static void require(boolean ok, Tensor fusedQkv, Tensor alibi, Tensor mask) {
        if (!ok) {
            throw new IllegalArgumentException("the native attention takes a contiguous CPU fused QKV [B, T, heads·3·head_dim] (bfloat16 with head_dim "
                    + "even, or float32), ALiBi [B·heads, 1, T] of its dtype and a bool mask [B, 1, T, T], got " + fusedQkv.scalar_type()
                    + Tensors.shapeString(fusedQkv) + ", " + alibi.scalar_type() + Tensors.shapeString(alibi) + " and " + mask.scalar_type()
                    + Tensors.shapeString(mask));
        }
    }
}
