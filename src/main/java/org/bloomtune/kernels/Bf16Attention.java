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
 * BLOOM's eager attention in bfloat16 over a call's own keys (no cache, no prefix) by
 * native/attention_bf16.c, from the fused QKV projection to the merged heads and back: the ALiBi
 * scores, HF's masked probabilities and the attended values, one (row, head) pair at a time, in
 * place of libtorch's head split, six batched products and merge. Each product is rounded where
 * libtorch's is; only the order of the float32 sums differs. Products skip what the mask makes
 * zero (about half under a causal mask), and the backward forms the probabilities again instead of
 * keeping a float32 [B·heads, T, T] tensor per layer. Only on CPUs with AVX512_BF16; elsewhere the
 * caller keeps libtorch's ops.
 */
public final class Bf16Attention {
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;
    private static final ValueLayout A = ValueLayout.ADDRESS;
    private static final MethodHandle FORWARD = NativeKernels.bindIfSupported("bt_bf16_rows_supported", "bt_attention_bf16_forward",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, A, A, A, A, A, L, L, L, L, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_INT));
    private static final MethodHandle BACKWARD = FORWARD == null ? null : NativeKernels.bind("bt_attention_bf16_backward",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, A, A, A, A, A, A, L, L, L, L, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_INT));
    private static final MethodHandle SCRATCH_BYTES = FORWARD == null ? null : NativeKernels.bind("bt_attention_bf16_scratch_bytes",
            FunctionDescriptor.of(L, L, L));

    private Bf16Attention() {}

    /** True when the kernels are built and this CPU has AVX512_BF16. */
    public static boolean available() {
        return FORWARD != null;
    }

    /**
     * True when the kernel takes {@code fusedQkv} [B, T, heads · 3 · head_dim] (bfloat16, per head q,
     * k, v side by side), {@code alibi} [B · heads, 1, T] (bfloat16) and {@code mask} [B, 1, T, T]
     * (bool), all contiguous on the CPU, with an even head_dim.
     */
    public static boolean applies(Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        if (!available() || heads < 1 || fusedQkv.dim() != 3 || alibi.dim() != 3 || mask.dim() != 4) return false;
        long batch = fusedQkv.size(0), positions = fusedQkv.size(1), width = fusedQkv.size(2);
        if (width % (3 * heads) != 0 || (width / (3 * heads)) % 2 != 0) return false;
        return bf16(fusedQkv) && bf16(alibi) && alibi.size(0) == batch * heads && alibi.size(1) == 1 && alibi.size(2) == positions
                && mask.scalar_type().value == ScalarType.Bool.value && mask.is_contiguous() && mask.is_cpu()
                && mask.size(0) == batch && mask.size(1) == 1 && mask.size(2) == positions && mask.size(3) == positions;
    }

    /** The merged heads [B, T, heads · head_dim]; call where {@link #applies}. */
    public static Tensor forward(Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        require(applies(fusedQkv, alibi, mask, heads), fusedQkv, alibi, mask);
        long batch = fusedQkv.size(0), positions = fusedQkv.size(1), headDim = headDim(fusedQkv, heads);
        Tensor merged = torch.empty(new long[]{batch, positions, heads * headDim}, fusedQkv.options(), new MemoryFormatOptional());
        int threads = threads();
        int status;
        try (Tensor scratch = scratch(positions, headDim, threads)) {
            status = (int) FORWARD.invokeExact(NativeMemory.of(fusedQkv), NativeMemory.of(alibi), NativeMemory.of(mask), NativeMemory.of(merged),
                    NativeMemory.of(scratch), batch, heads, positions, headDim, alpha(headDim), threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_attention_bf16_forward failed", t);
        }
        check(status, "forward");
        return merged;
    }

    /**
     * The fused QKV's gradient [B, T, heads · 3 · head_dim] from the merged heads' {@code grad} and the
     * forward's inputs (the probabilities are formed again, bit for bit, rather than kept).
     */
    public static Tensor backward(Tensor grad, Tensor fusedQkv, Tensor alibi, Tensor mask, long heads) {
        boolean ok = applies(fusedQkv, alibi, mask, heads) && bf16(grad) && grad.dim() == 3 && grad.size(0) == fusedQkv.size(0)
                && grad.size(1) == fusedQkv.size(1) && grad.size(2) * 3 == fusedQkv.size(2);
        if (!ok) {
            throw new IllegalArgumentException("attention_bf16 backward takes a contiguous bfloat16 gradient [B, T, H] for the fused QKV "
                    + Tensors.shapeString(fusedQkv) + ", got " + grad.scalar_type() + Tensors.shapeString(grad));
        }
        long batch = fusedQkv.size(0), positions = fusedQkv.size(1), headDim = headDim(fusedQkv, heads);
        Tensor dQkv = torch.empty_like(fusedQkv);
        int threads = threads();
        int status;
        try (Tensor scratch = scratch(positions, headDim, threads)) {
            status = (int) BACKWARD.invokeExact(NativeMemory.of(fusedQkv), NativeMemory.of(alibi), NativeMemory.of(mask), NativeMemory.of(grad),
                    NativeMemory.of(dQkv), NativeMemory.of(scratch), batch, heads, positions, headDim, alpha(headDim), threads);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_attention_bf16_backward failed", t);
        }
        check(status, "backward");
        return dQkv;
    }

    /** Each thread's buffers for one (row, head) pair at a time: a few of [T, T] and [T, head_dim]. */
    private static Tensor scratch(long positions, long headDim, int threads) {
        return NativeKernels.threadScratch(SCRATCH_BYTES, "bt_attention_bf16_scratch_bytes", positions, headDim, threads);
    }

    /** HF's 1 / √head_dim, as baddbmm applies it in float. */
    private static float alpha(long headDim) {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    private static long headDim(Tensor fusedQkv, long heads) {
        return fusedQkv.size(2) / (3 * heads);
    }

    private static boolean bf16(Tensor t) {
        return t.scalar_type().value == ScalarType.BFloat16.value && t.is_contiguous() && t.is_cpu();
    }

    private static int threads() { return Math.max(1, torch.get_num_threads()); }

    private static void check(int status, String pass) {
        if (status != 0) throw new OutOfMemoryError("attention_bf16 " + pass + ": no memory for the mask's tables");
    }

    private static void require(boolean ok, Tensor fusedQkv, Tensor alibi, Tensor mask) {
        if (!ok) {
            throw new IllegalArgumentException("attention_bf16 takes a contiguous CPU bfloat16 fused QKV [B, T, heads·3·head_dim] (head_dim even), "
                    + "ALiBi [B·heads, 1, T] and a bool mask [B, 1, T, T], got " + fusedQkv.scalar_type() + Tensors.shapeString(fusedQkv) + ", "
                    + alibi.scalar_type() + Tensors.shapeString(alibi) + " and " + mask.scalar_type() + Tensors.shapeString(mask));
        }
    }
}
