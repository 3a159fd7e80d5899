package org.bloomtune.kernels;

import org.bloomtune.tensor.NativeLibrary;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * A linear layer's product for a decode step's rows as a native caller makes it: the C function
 * the Java path would call for these rows (chosen by the same checks), how it is called, and the
 * layer's frozen weight, scales and bias. {@link DecodeBlocksKernel} calls it from C for every block.
 * Opaque outside this package: only the kernel classes make one, from tensors they have checked.
 */
public final class RowKernel {
    /** The C signatures (native/decode_blocks.c). */
    enum Call {
        /** {@code f(w, x, bias, y, rows, n, k, ldy)}: bt_bf16_rows_linear, bt_f32_rows_linear. */
        DENSE,
        /** {@code f(values, scales, x, bias, y, rows, n, k, ldy)}: the weight-only int8 row kernels. */
        INT8,
        /** {@code f(x, type, rows, k, threshold, values, scales, bias, n, y, ldy)}: bt_llm_int8_rows_linear. */
        LLM_INT8,
        /** LLM_INT8's signature for bt_llm_int8_panels_linear, whose two halves the decode step may call instead (its chunked shares). */
        LLM_INT8_PANELS,
        /** INT8's signature for the weight-only panels; where they multiply by digits the decode step calls the digits' two halves instead. */
        INT8_PANELS,
        /** DENSE's signature for bt_bf16_panels_linear; where it widens x the decode step widens x once per linear instead (native/bf16_panels.h). */
        BF16_PANELS
    }

    final Call call;
    final MemorySegment function;
    final MemorySegment weight;         // [n, k] in the compute dtype, or int8 values
    final MemorySegment scales;         // [n] float32 row scales of an int8 weight, else NULL
    final MemorySegment bias;           // [n] in the compute dtype, else NULL
    final long n;
    final long k;
    final long weightBytes;             // bytes of one weight element
    final double threshold;             // LLM.int8's outlier threshold (0 for the others)

    private RowKernel(Call call, String function, MemorySegment weight, MemorySegment scales, Tensor bias, long n, long k,
                      long weightBytes, double threshold) {
        this.call = call;
        this.function = NativeLibrary.address(function);
        this.weight = weight;
        this.scales = scales;
        this.bias = NativeMemory.ofNullable(bias);
        this.n = n;
        this.k = k;
        this.weightBytes = weightBytes;
        this.threshold = threshold;
    }

    /** {@code function} over a dense weight [n, k] (+ bias or null). */
    static RowKernel dense(String function, Tensor weight, Tensor bias) {
        return dense(Call.DENSE, function, weight, bias);
    }

    /** {@code function}, called as {@code call} says, over a dense weight or its panels [n, k] (+ bias or null). */
    static RowKernel dense(Call call, String function, Tensor weight, Tensor bias) {
        return new RowKernel(call, function, NativeMemory.of(weight), MemorySegment.NULL, bias, weight.size(0), weight.size(1),
                weight.element_size(), 0);
    }

    /** {@code function} over int8 {@code values} [n, k] with row {@code scales} (+ bias or null). */
    static RowKernel int8(Call call, String function, Tensor values, Tensor scales, Tensor bias, double threshold) {
        return new RowKernel(call, function, NativeMemory.of(values), NativeMemory.of(scales), bias, values.size(0), values.size(1), 1,
                threshold);
    }

    /** Output features: the weight's rows. */
    public long outFeatures() { return n; }

    /** Input features: the weight's columns. */
    public long inFeatures() { return k; }
}
