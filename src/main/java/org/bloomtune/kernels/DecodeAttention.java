package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeLibrary;
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
 * BLOOM's eager attention for a decode step — one new position per row — by
 * native/decode_attention.c: the new key and value go into the cache buffers in place and each
 * (row, head) attends over its cached positions in one pass, rounded where HF's eager ops round.
 * Takes contiguous float32 or bfloat16 CPU tensors outside autograd; callers keep libtorch's op
 * chain otherwise. Where the CPU has AVX-512 (F, BW, VL) and FMA,
 * native/decode_attention_avx512.c runs instead of the portable kernel: the same contract, written
 * with intrinsics.
 */
public final class DecodeAttention {
    /**
     * Multiply-adds (rows · positions · head_dim, for the scores; as many again for the values) per
     * thread below which one thread does the whole layer: a hand-off costs more than it saves.
     */
    private static final long WORK_PER_PART = 1L << 18;

    private static final MethodHandle PORTABLE = NativeKernels.available() ? NativeKernels.bind("bt_decode_attention", descriptor()) : null;
    private static final MethodHandle AVX512 =
            NativeKernels.bindIfSupported("bt_decode_attention_avx512_supported", "bt_decode_attention_avx512", descriptor());
    private static final MethodHandle KERNEL = AVX512 != null ? AVX512 : PORTABLE;

    private DecodeAttention() {}

    /**
     * True when the kernel takes these tensors (see {@link #forward} for the shapes): the library
     * is built, every tensor is a contiguous CPU tensor outside autograd, the floating ones share
     * float32 or bfloat16, and the shapes agree.
     */
    public static boolean applies(Tensor qkv, Tensor keys, Tensor values, long past, Tensor alibi, Tensor masked, int heads) {
        if (KERNEL == null || heads <= 0 || past < 0 || qkv.dim() != 3 || qkv.size(1) != 1 || keys.dim() != 3 || values.dim() != 3) return false;
        int type = qkv.scalar_type().value;
        if (type != ScalarType.Float.value && type != ScalarType.BFloat16.value) return false;
        for (Tensor t : new Tensor[]{qkv, keys, values, alibi}) if (!usable(t) || t.scalar_type().value != type) return false;
        if (!usable(masked) || masked.scalar_type().value != ScalarType.Bool.value) return false;
        long batch = qkv.size(0);
        long headDim = keys.size(1);
        long capacity = keys.size(2);
        long positions = past + 1;
        return headDim > 0 && qkv.size(2) == 3L * heads * headDim && capacity >= positions
                && keys.size(0) == batch * heads && values.size(0) == batch * heads && values.size(1) == capacity && values.size(2) == headDim
                && alibi.numel() == batch * heads * positions && masked.numel() == batch * positions;
    }

    private static boolean usable(Tensor t) {
        return t.is_cpu() && t.is_contiguous() && !t.requires_grad();
    }

    /**
     * Writes the new position's keys and values at {@code past} in the cache buffers and returns the
     * merged heads; call only where {@link #applies}.
     *
     * @param qkv    [B, 1, heads · 3 · head_dim] the fused projection, laid out per head (q, k, v)
     * @param keys   [B · heads, head_dim, capacity] the key cache buffer, capacity &gt; past
     * @param values [B · heads, capacity, head_dim] the value cache buffer
     * @param past   positions already cached
     * @param alibi  [B · heads, 1, past + 1] ALiBi bias in the compute dtype
     * @param masked [B, 1, 1, past + 1] true where a key is hidden
     * @return [B, 1, heads · head_dim] in the compute dtype
     */
    public static Tensor forward(Tensor qkv, Tensor keys, Tensor values, long past, Tensor alibi, Tensor masked, int heads) {
        return forward(qkv, keys, values, past, alibi, masked, heads, false);
    }

    /** True when this CPU runs the AVX-512 kernel (and {@code forward(…, true)} the portable one instead). */
    static boolean hasAvx512() { return AVX512 != null; }

    /** {@link #forward}, by the portable kernel when {@code portable} (tests compare the two). */
    static Tensor forward(Tensor qkv, Tensor keys, Tensor values, long past, Tensor alibi, Tensor masked, int heads, boolean portable) {
        MethodHandle kernel = portable ? PORTABLE : KERNEL;
        if (!applies(qkv, keys, values, past, alibi, masked, heads)) {
            throw new IllegalArgumentException("bt_decode_attention does not take these tensors");
        }
        long batch = qkv.size(0);
        long headDim = keys.size(1);
        long capacity = keys.size(2);
        long rows = batch * heads;
        Tensor out = torch.empty(new long[]{batch, 1, heads * headDim}, qkv.options(), new MemoryFormatOptional());
        MemorySegment q = NativeMemory.of(qkv);
        MemorySegment k = NativeMemory.of(keys);
        MemorySegment v = NativeMemory.of(values);
        MemorySegment a = NativeMemory.of(alibi);
        MemorySegment m = NativeMemory.of(masked);
        MemorySegment o = NativeMemory.of(out);
        float alpha = (float) (1.0 / Math.sqrt(headDim));
        int bf16 = qkv.scalar_type().value == ScalarType.BFloat16.value ? 1 : 0;
        int parts = parts(rows, past, headDim);
        RowSplit.run("bt_decode_attention", rows, parts, (from, count) -> {
            int status = (int) kernel.invokeExact(q, k, v, a, m, o, from, count, (long) heads, headDim, past, capacity, alpha, bf16);
            if (status != 0) throw new OutOfMemoryError("bt_decode_attention could not allocate " + (past + 1 + headDim) + " floats of scratch");
        });
        return out;
    }

    /** Threads that share a layer's (row, head) pairs: fewer when there is too little work to hand over. */
    static int parts(long pairs, long past, long headDim) {
        return RowSplit.parts(pairs, pairs * (past + 1) * headDim / WORK_PER_PART);
    }

    /** The address of the kernel {@link #forward} calls, for a native caller; null without the library. */
    static MemorySegment kernelAddress() {
        return AVX512 != null ? NativeLibrary.address("bt_decode_attention_avx512") : PORTABLE != null ? NativeLibrary.address("bt_decode_attention") : null;
    }

    private static FunctionDescriptor descriptor() {
        ValueLayout.OfLong l = ValueLayout.JAVA_LONG;
        ValueLayout a = ValueLayout.ADDRESS;
        return FunctionDescriptor.of(ValueLayout.JAVA_INT, a, a, a, a, a, a, l, l, l, l, l, l, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_INT);
    }
}
