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

/**
 * The fused LLM.int8 activation quantization of native/llm_int8_quantize.c, from float32, bfloat16
 * or float16 rows — also, with no threshold, a weight's per-row absmax quantization at load.
 */
public final class Int8Quantize {
    private static final MethodHandle QUANTIZE = bind("bt_llm_int8_quantize", false);
    private static final MethodHandle QUANTIZE_BF16 = bind("bt_llm_int8_quantize_bf16", true);
    private static final MethodHandle QUANTIZE_F16 = bind("bt_llm_int8_quantize_f16", true);

    private Int8Quantize() {}

    /**
     * @param x8       [M, K] int8: the regular columns quantized per row, outlier columns 0
     * @param rowScale [M, 1] float32: each row's absmax / 127
     * @param outlier  [K] bool: columns with some |x| ≥ threshold
     */
    public record Result(Tensor x8, Tensor rowScale, Tensor outlier, int outliers) {}

    public static boolean available() { return QUANTIZE != null; }

    /** True for the tensors {@link #quantize} takes: contiguous float32, bfloat16 or float16 CPU [M, K]. */
    public static boolean accepts(Tensor x) {
        int type = x.scalar_type().value;
        return x.dim() == 2 && (type == ScalarType.Float.value || type == ScalarType.BFloat16.value || type == ScalarType.Half.value)
                && x.is_contiguous() && x.is_cpu();
    }

    /** Quantizes {@code x} [M, K] (float32, bfloat16 or float16, contiguous, CPU — checked here before the call). */
    public static Result quantize(Tensor x, double threshold) {
        if (!available()) throw new UnsupportedOperationException("the native kernels are not built for this platform");
        if (!accepts(x)) {
            throw new IllegalArgumentException("bt_llm_int8_quantize needs a contiguous float32, bfloat16 or float16 CPU [M, K], got "
                    + x.scalar_type() + Tensors.shapeString(x));
        }
        long m = x.size(0);
        long k = x.size(1);
        Tensor x8 = empty(new long[]{m, k}, ScalarType.Char);
        Tensor rowScale = empty(new long[]{m, 1}, ScalarType.Float);
        Tensor outlier = empty(new long[]{k}, ScalarType.Bool);
        int outliers;
        try {
            if (x.scalar_type().value == ScalarType.Float.value) {
                outliers = (int) QUANTIZE.invokeExact(NativeMemory.of(x), m, k, (float) threshold, NativeMemory.of(x8), NativeMemory.of(rowScale), NativeMemory.of(outlier));
            } else {
                MethodHandle widening = x.scalar_type().value == ScalarType.BFloat16.value ? QUANTIZE_BF16 : QUANTIZE_F16;
                try (Tensor row = empty(new long[]{k}, ScalarType.Float)) {      // one 16-bit row widened at a time
                    outliers = (int) widening.invokeExact(NativeMemory.of(x), m, k, (float) threshold,
                            NativeMemory.of(x8), NativeMemory.of(rowScale), NativeMemory.of(outlier), NativeMemory.of(row));
                }
            }
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_llm_int8_quantize failed", t);
        }
        return new Result(x8, rowScale, outlier, outliers);
    }

    private static MethodHandle bind(String name, boolean rowBuffer) {
        if (!NativeKernels.available()) return null;
        FunctionDescriptor common = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS);
        return NativeKernels.bind(name, rowBuffer ? common.appendArgumentLayouts(ValueLayout.ADDRESS) : common);
    }

    private static Tensor empty(long[] shape, ScalarType type) {
        return torch.empty(shape, new TensorOptions(type), new MemoryFormatOptional());
    }
}
