package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Each row's argmax, with torch.argmax's rules (first index of the largest value; a NaN counts as
 * the largest), by native/rows_argmax.c: what greedy decoding takes from a step's logits. libtorch's
 * bfloat16 argmax is a scalar loop, and copying the logits out as floats costs more than the choice.
 * Elsewhere (CUDA, other dtypes, no kernels built) libtorch's argmax.
 */
public final class RowsArgmax {
    private static final MethodHandle F32 = bind("bt_rows_argmax_f32");
    private static final MethodHandle BF16 = bind("bt_rows_argmax_bf16");

    private RowsArgmax() {}

    /** {@code logits} [rows, V] (V ≥ 1) → each row's argmax. */
    public static long[] of(Tensor logits) {
        if (logits.dim() != 2 || logits.size(1) < 1) throw new IllegalArgumentException("argmax needs [rows, V ≥ 1] logits, got " + logits.dim() + " dims");
        return applies(logits) ? kernel(logits) : libtorch(logits);
    }

    static boolean applies(Tensor logits) {
        int type = logits.scalar_type().value;
        return F32 != null && (type == ScalarType.Float.value || type == ScalarType.BFloat16.value)
                && logits.is_contiguous() && logits.is_cpu();
    }

    static long[] libtorch(Tensor logits) {
        try (Tensor ids = logits.argmax(new LongOptional(-1), false)) {
            return Tensors.toLongs(ids);
        }
    }

    private static long[] kernel(Tensor logits) {
        long rows = logits.size(0);
        long vocab = logits.size(1);
        boolean bf16 = logits.scalar_type().value == ScalarType.BFloat16.value;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG, rows);
            (bf16 ? BF16 : F32).invokeExact(NativeMemory.of(logits), out, rows, vocab);
            return out.toArray(ValueLayout.JAVA_LONG);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_rows_argmax failed", t);
        }
    }

    private static MethodHandle bind(String name) {
        if (!NativeKernels.available()) return null;
        return NativeKernels.bind(name, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    }
}
