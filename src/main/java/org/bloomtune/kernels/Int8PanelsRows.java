package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Rows of an int8 weight kept in panels ({@link Int8Bf16Panels}' or {@link LlmInt8Panels}' order)
 * dequantized in one native call (native/int8_panels_rows.c) as the row-major word embedding's
 * lookup dequantizes in libtorch: the values and the row's scale in the compute dtype, multiplied.
 * A decode step looks its input up here when the word embedding lives in the tied lm_head's panels.
 */
final class Int8PanelsRows {
    private static final MethodHandle ROWS = NativeKernels.available() ? NativeKernels.bind("bt_int8_panels_rows", FunctionDescriptor.ofVoid(
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS)) : null;

    private Int8PanelsRows() {}

    /**
     * Rows {@code ids} [...] (int64) of {@code panels} [n, k] (packed by a layout whose words are
     * {@code wordBytes} bytes, checked by the caller) with float32 row {@code scales} [n]: [..., k] in
     * {@code dtype} (float32 or bfloat16). Every id is checked against n before a row is read.
     */
    static Tensor rows(Tensor panels, Tensor scales, Tensor ids, long wordBytes, ScalarType dtype, String name) {
        return DensePanels.gathered(ids, panels.size(0), panels.size(1), dtype, name, gather(panels, scales, wordBytes, dtype, name));
    }

    /** {@link #rows}' native gather, for a caller that checks the ids and owns the output; the scales are checked here. */
    static RowGather gather(Tensor panels, Tensor scales, long wordBytes, ScalarType dtype, String name) {
        boolean bf16 = dtype.value == ScalarType.BFloat16.value;
        if (!bf16 && dtype.value != ScalarType.Float.value) throw new IllegalArgumentException(name + " gives float32 or bfloat16 rows, not " + dtype);
        if (scales.dim() != 1 || scales.size(0) != panels.size(0) || scales.scalar_type().value != ScalarType.Float.value
                || !scales.is_contiguous() || !scales.is_cpu()) {
            throw new IllegalArgumentException(name + " takes the packed weight's float32 row scales, one a row");
        }
        MemorySegment values = NativeMemory.of(panels);
        MemorySegment rowScales = NativeMemory.of(scales);
        long k = panels.size(1);
        return (ids, count, out) -> { ROWS.invokeExact(values, rowScales, k, wordBytes, ids, count, bf16 ? 1 : 0, out); };
    }
}
