package org.bloomtune.kernels;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * One block of an online softmax over a row's columns (flash attention's recurrence): the block
 * becomes exp(x − running max), and each row's running max and sum move on. On the CPU by
 * native/online_softmax.c (or its AVX-512 twin, online_softmax_avx512.c), rows split over libtorch's thread count (rows are independent, so the
 * split does not change the result); elsewhere by libtorch ops. A bfloat16 block keeps its running
 * state in float32 and comes back as the float32 result rounded to bfloat16.
 */
public final class OnlineSoftmax {
    private static final FunctionDescriptor SIGNATURE = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS);
    private static final MethodHandle KERNEL = bind("bt_online_softmax_block");
    private static final MethodHandle KERNEL_BF16 = bind("bt_online_softmax_block_bf16");

    /** Who runs a block: the C kernel (native/) or libtorch's op chain. */
    public enum Implementation { NATIVE, LIBTORCH }

    private OnlineSoftmax() {}

    /** The AVX-512 version of {@code name} where the CPU has it (native/online_softmax_avx512.c), else the portable one. */
    private static MethodHandle bind(String name) {
        if (!NativeKernels.available()) return null;
        MethodHandle avx512 = NativeKernels.bindIfSupported("bt_online_softmax_avx512_supported", name + "_avx512", SIGNATURE);
        return avx512 != null ? avx512 : NativeKernels.bind(name, SIGNATURE);
    }

    /** Running state for {@code rows} rows before the first block: max −inf, sum 0. */
    public record State(Tensor max, Tensor sum, Tensor rescale) {
        /** @param type the blocks' dtype, float32 or float64; the sum is always float64 */
        public static State start(long rows, DType type, Device device) {
            return new State(
                    torch.full(new long[]{rows}, new Scalar(Double.NEGATIVE_INFINITY), Tensors.options(type, device)),
                    torch.zeros(new long[]{rows}, Tensors.options(DType.F64, device)),
                    torch.zeros(new long[]{rows}, Tensors.options(type, device)));
        }

        /** Σ over rows of logsumexp(row) = max + ln sum, in double. */
        public double logSumExpTotal() {
            return Tensors.toDouble(sum.log().add(max.to(ScalarType.Double)).sum());
        }
    }

    /**
     * Overwrites {@code block} [rows, n] (float32, float64, or bfloat16 with a float32 state; finite)
     * with exp(x − new max) and updates {@code state}; {@code state.rescale()} then holds
     * exp(old max − new max) per row (0 on the first block), for rescaling anything accumulated
     * against the old max.
     */
    public static void update(Tensor block, State state) {
        check(block, state);
        if (nativeAccepts(block, state)) {
            updateNative(block, state);
        } else {
            updateWithTorch(block, state);
        }
    }

    /** As above by the given implementation; NATIVE needs a contiguous float32 or bfloat16 CPU block and the built kernels. */
    public static void update(Tensor block, State state, Implementation implementation) {
        check(block, state);
        if (implementation == Implementation.LIBTORCH) {
            updateWithTorch(block, state);
        } else if (nativeAccepts(block, state)) {
            updateNative(block, state);
        } else {
            throw new IllegalArgumentException("bt_online_softmax_block needs the built kernels and contiguous float32 or bfloat16 CPU tensors, got "
                    + block.scalar_type() + Tensors.shapeString(block) + " on " + block.device().str().getString());
        }
    }

    private static boolean nativeAccepts(Tensor block, State state) {
        int type = block.scalar_type().value;
        return KERNEL != null && (type == ScalarType.Float.value || type == ScalarType.BFloat16.value)
                && block.is_contiguous() && block.is_cpu()
                && onCpuContiguous(state.max()) && onCpuContiguous(state.sum()) && onCpuContiguous(state.rescale());
    }

    private static boolean onCpuContiguous(Tensor t) {
        return t.is_contiguous() && t.is_cpu();
    }

    /** The same recurrence in libtorch ops: four passes over the block and a temporary. */
    private static void updateWithTorch(Tensor block, State state) {
        if (isBf16(block)) {
            Tensor wide = block.to(ScalarType.Float);
            updateWithTorch(wide, state);
            block.copy_(wide);
            return;
        }
        Tensor newMax = torch.maximum(state.max(), block.amax(new long[]{1}, false));
        state.rescale().copy_(state.max().sub(newMax).exp_());
        block.sub_(newMax.unsqueeze(1)).exp_();
        state.sum().mul_(state.rescale()).add_(block.sum(new long[]{1}, false,
                new ScalarTypeOptional(ScalarType.Double)));
        state.max().copy_(newMax);
    }

    private static void updateNative(Tensor block, State state) {
        long rows = block.size(0);
        long n = block.size(1);
        MemorySegment values = NativeMemory.of(block);
        MemorySegment max = NativeMemory.of(state.max());
        MemorySegment sum = NativeMemory.of(state.sum());
        MemorySegment rescale = NativeMemory.of(state.rescale());
        MethodHandle kernel = isBf16(block) ? KERNEL_BF16 : KERNEL;
        long width = block.element_size();
        int parts = RowSplit.parts(rows, rows);
        RowSplit.run("bt_online_softmax_block", rows, parts, (from, count) -> {
            kernel.invokeExact(values.asSlice(from * n * width, count * n * width), count, n,
                        max.asSlice(from * Float.BYTES, count * Float.BYTES),
                        sum.asSlice(from * Double.BYTES, count * Double.BYTES),
                        rescale.asSlice(from * Float.BYTES, count * Float.BYTES));
        });
    }

    /** Shapes and dtypes, checked before any pointer reaches C. */
    private static void check(Tensor block, State state) {
        ScalarType type = stateType(block.scalar_type());
        if (block.dim() != 2 || type == null) {
            throw new IllegalArgumentException("online softmax needs a float32, float64 or bfloat16 [rows, n] block, got "
                    + block.scalar_type() + Tensors.shapeString(block));
        }
        long rows = block.size(0);
        if (!vector(state.max(), rows, type) || !vector(state.sum(), rows, ScalarType.Double) || !vector(state.rescale(), rows, type)) {
            throw new IllegalArgumentException("online softmax state must be max and rescale in the block's dtype (float32 for bfloat16) and a float64 sum, of ["
                    + rows + "], got " + Tensors.shapeString(state.max()) + ", " + Tensors.shapeString(state.sum()) + ", "
                    + Tensors.shapeString(state.rescale()));
        }
    }

    /** The running max's and rescale's dtype for a block of {@code block}'s: its own, float32 for bfloat16; null if unsupported. */
    private static ScalarType stateType(ScalarType block) {
        if (block.value == ScalarType.Float.value || block.value == ScalarType.Double.value) return block;
        return block.value == ScalarType.BFloat16.value ? ScalarType.Float : null;
    }

    private static boolean isBf16(Tensor t) { return t.scalar_type().value == ScalarType.BFloat16.value; }

    private static boolean vector(Tensor t, long rows, ScalarType type) {
        return t.dim() == 1 && t.size(0) == rows && t.scalar_type().value == type.value;
    }
}
