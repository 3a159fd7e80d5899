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

/** The fused LLM.int8 activation quantization of native/llm_int8_quantize.c. */
public final class Int8Quantize {
    private static final MethodHandle QUANTIZE = NativeKernels.available()
            ? NativeKernels.bind("bt_llm_int8_quantize", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_FLOAT,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS))
            : null;

    private Int8Quantize() {}

    /**
     * @param x8       [M, K] int8: the regular columns quantized per row, outlier columns 0
     * @param rowScale [M, 1] float32: each row's absmax / 127
     * @param outlier  [K] bool: columns with some |x| ≥ threshold
     */
    public record Result(Tensor x8, Tensor rowScale, Tensor outlier, int outliers) {}

    public static boolean available() { return QUANTIZE != null; }

    /** Quantizes {@code x} [M, K] (float32, contiguous, CPU — checked here before the call). */
    public static Result quantize(Tensor x, double threshold) {
        if (!available()) throw new UnsupportedOperationException("the native kernels are not built for this platform");
        if (x.dim() != 2 || x.scalar_type().value != ScalarType.Float.value || !x.is_contiguous() || !x.device().is_cpu()) {
            throw new IllegalArgumentException("bt_llm_int8_quantize needs a contiguous float32 CPU [M, K], got "
                    + x.scalar_type() + Tensors.shapeString(x));
        }
        long m = x.size(0);
        long k = x.size(1);
        Tensor x8 = empty(new long[]{m, k}, ScalarType.Char);
        Tensor rowScale = empty(new long[]{m, 1}, ScalarType.Float);
        Tensor outlier = empty(new long[]{k}, ScalarType.Bool);
        int outliers;
        try {
            outliers = (int) QUANTIZE.invokeExact(address(x), m, k, (float) threshold, address(x8), address(rowScale), address(outlier));
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_llm_int8_quantize failed", t);
        }
        return new Result(x8, rowScale, outlier, outliers);
    }

    private static MemorySegment address(Tensor t) {
        return NativeMemory.segment(t.data_ptr(), t.nbytes());
    }

    private static Tensor empty(long[] shape, ScalarType type) {
        return torch.empty(shape, new TensorOptions(type), new MemoryFormatOptional());
    }
}
