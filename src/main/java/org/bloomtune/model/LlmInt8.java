package org.bloomtune.model;

import org.bloomtune.kernels.Int8Rescale;
import org.bloomtune.kernels.Int8Quantize;
import org.bloomtune.kernels.Int8RowsLinear;
import org.bloomtune.kernels.LlmInt8Rows;
import org.bloomtune.kernels.RowsArgmax;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tensor.shim.AtenShim;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * LLM.int8 (Dettmers et al. 2022, bitsandbytes' {@code MatMul8bitLt}): the columns of the
 * activation whose magnitude reaches the threshold are multiplied in floating point; the rest is
 * quantized per row (absmax / 127) and multiplied int8 × int8 with int32 accumulation, then
 * rescaled by the row and weight scales.
 */
public final class LlmInt8 {
    /** Who quantizes the activations: the fused C kernel (native/) or libtorch's op chain. */
    public enum Quantizer { NATIVE, LIBTORCH }

    /** The fused kernel where it was built (it is faster: benchmarks/FINDINGS.md), else libtorch. */
    public static final Quantizer DEFAULT = Int8Quantize.available() ? Quantizer.NATIVE : Quantizer.LIBTORCH;

    private LlmInt8() {}

    /**
     * {@code x} [M, K] float → [M, N] in x's dtype, plus {@code bias} (or null): a decode step's few
     * rows in one native call each, which adds the bias in its own pass.
     */
    static Tensor matmul(Tensor x, Int8Weight w, double threshold, Tensor bias) {
        if (LlmInt8Rows.applies(x, w.values(), w.scales()) && (bias == null || LlmInt8Rows.takesBias(x, w.values(), bias))) {
            return LlmInt8Rows.forward(x, w.values(), w.scales(), bias, threshold);
        }
        return Int8Kernel.plusBias(opByOp(x, w, threshold), bias);
    }

    /** LLM.int8 as an {@link Int8Kernel} with the outlier {@code threshold}: the bias goes into the native pass. */
    static Int8Kernel kernel(double threshold) {
        return new Int8Kernel() {
            @Override
            public Tensor multiply(Tensor x2d, Int8Weight weight, Tensor bias) { return matmul(x2d, weight, threshold, bias); }

            @Override
            public Tensor multiplyWithArgmax(Tensor x2d, Int8Weight weight, RowsArgmax.Picks picks) {
                if (!LlmInt8Rows.applies(x2d, weight.values(), weight.scales())) return Int8Kernel.super.multiplyWithArgmax(x2d, weight, picks);
                return LlmInt8Rows.forward(x2d, weight.values(), weight.scales(), null, threshold, picks);
            }

            @Override
            public RowKernel rowKernel(Tensor x2d, Int8Weight weight, Tensor bias) {
                return LlmInt8Rows.rowKernel(x2d, weight.values(), weight.scales(), bias, threshold);
            }
        };
    }

    /** The same, op by op: quantize, int8 product, rescale, outlier columns (any row count). */
    static Tensor opByOp(Tensor x, Int8Weight w, double threshold) {
        return Scopes.inner(() -> quantizedMatmul(x, w, threshold));     // the quantized copies die here
    }

    private static Tensor quantizedMatmul(Tensor x, Int8Weight w, double threshold) {
        Tensor xc = x.contiguous();
        // The native quantizer reads bfloat16 activations as they are; libtorch's chain needs float32.
        Tensor input = DEFAULT == Quantizer.NATIVE && Int8Quantize.accepts(xc) ? xc : xc.to(ScalarType.Float).contiguous();
        Int8Quantize.Result q = quantize(input, threshold, DEFAULT);
        // Without outliers the scaled result goes straight into x's dtype; with them it stays float32
        // until the outlier product is added, so it is rounded once.
        ScalarType target = q.outliers() == 0 ? x.scalar_type() : ScalarType.Float;
        long m = x.size(0);
        Tensor y = torch.empty(new long[]{m, w.outFeatures()}, new TensorOptions(target), new MemoryFormatOptional());
        long rows = accumulatorRows(m, w.outFeatures());
        try (Tensor acc = torch.empty(new long[]{rows, w.outFeatures()}, new TensorOptions(ScalarType.Int), new MemoryFormatOptional())) {
            for (long start = 0; start < m; start += rows) {
                long count = Math.min(rows, m - start);
                try (PointerScope scope = new PointerScope()) {
                    Tensor a = acc.narrow(0, 0, count);
                    Tensor x8 = q.x8().narrow(0, start, count);
                    int32Product(a, x8, w.values());
                    rescale(a, q.rowScale().narrow(0, start, count), w.scales(), y.narrow(0, start, count));
                }
            }
        }
        if (q.outliers() > 0) {
            Tensor cols = Tensors.fromLongs(indices(q.outlier()), q.outliers());
            Tensor wOut = w.values().index_select(1, cols).to(ScalarType.Float).mul_(w.scales().unsqueeze(1)); // [N, k]
            y.addmm_(input.index_select(1, cols).to(ScalarType.Float), wOut.t());
        }
        return y.to(x.scalar_type());
    }

    /**
     * {@code a} = {@code x8} · {@code values}ᵀ in int32, exactly: the native kernels for a few rows
     * (up to sixteen, eight a call), else libtorch's {@code _int_mm} where the CPU has VNNI. Without VNNI, oneDNN's int8 GEMM sums
     * pairs of u8 × s8 products in int16 ({@code vpmaddubsw}) and saturates (its "Nuances of int8
     * computations"), so the product goes through float32 instead, over slices of k short enough that
     * every sum is an exact integer.
     */
    private static void int32Product(Tensor a, Tensor x8, Tensor values) {
        if (Int8RowsLinear.appliesIntMm(a, x8, values)) Int8RowsLinear.intMm(a, x8, values);
        else if (Int8RowsLinear.vnniSupported()) AtenShim.intMm(a, x8, values.t());
        else int32ProductInFloat(a, x8, values);
    }

    /** Weight rows converted to float32 at a time: a block of an lm_head, not all of it. */
    private static final long FLOAT_WEIGHT_ROWS = 1024;
    /**
     * Columns of k summed per float32 product: |x8|, |w| ≤ 128, so every partial sum of 1024
     * products is an integer of at most 2^24 in magnitude, which float32 holds exactly.
     */
    private static final long EXACT_FLOAT_COLUMNS = 1024;

    private static void int32ProductInFloat(Tensor a, Tensor x8, Tensor values) {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = x8.to(ScalarType.Float);
            long n = values.size(0);
            long k = values.size(1);
            for (long from = 0; from < n; from += FLOAT_WEIGHT_ROWS) {
                long count = Math.min(FLOAT_WEIGHT_ROWS, n - from);
                try (PointerScope block = new PointerScope()) {
                    Tensor w = values.narrow(0, from, count).to(ScalarType.Float);
                    Tensor out = a.narrow(1, from, count);
                    for (long c = 0; c < k; c += EXACT_FLOAT_COLUMNS) {
                        long width = Math.min(EXACT_FLOAT_COLUMNS, k - c);
                        Tensor partial = torch.mm(x.narrow(1, c, width), w.narrow(1, c, width).t());
                        if (c == 0) out.copy_(partial);                     // exact integers: the cast to int32 keeps them
                        else out.add_(partial.to(ScalarType.Int));
                    }
                }
            }
        }
    }

    /**
     * Rows multiplied per {@code _int_mm} call: a training batch's whole [M, N] int32 accumulator is
     * tens of megabytes, above glibc's mmap threshold, so each call would get fresh pages whose
     * first-touch faults cost more than the product (benchmarks/FINDINGS.md); a block of rows,
     * rescaled into the output before the next, stays a few megabytes. An lm_head's wide rows still
     * go at least 64 at a time, so its weight is not read once per few rows.
     */
    static long accumulatorRows(long m, long n) {
        return Math.max(1, Math.min(m, Math.max(64, ACCUMULATOR_BYTES / (Integer.BYTES * Math.max(1, n)))));
    }

    private static final long ACCUMULATOR_BYTES = 8L << 20;

    /** {@code ((float) acc · rowScale) · colScale} into {@code out} (a row block of the result). */
    private static void rescale(Tensor acc, Tensor rowScale, Tensor colScale, Tensor out) {
        if (Int8Rescale.applies(acc, rowScale, colScale, out.scalar_type())) {
            Int8Rescale.into(acc, rowScale, colScale, out);
            return;
        }
        try (Tensor f = acc.to(ScalarType.Float)) {
            out.copy_(f.mul_(rowScale).mul_(colScale.unsqueeze(0)));
        }
    }

    /**
     * Vector-wise quantization with outlier columns: columns where some |x| ≥ threshold are marked
     * (none when threshold is 0) and zeroed; each row of the rest is scaled by its absmax / 127 and
     * rounded to int8. {@code xf} is a contiguous float32 [M, K].
     */
    public static Int8Quantize.Result quantize(Tensor xf, double threshold, Quantizer quantizer) {
        if (quantizer == Quantizer.NATIVE) return Int8Quantize.quantize(xf, threshold);
        Tensor outlier = threshold > 0
                ? xf.abs().amax(new long[]{0}, false).ge(new Scalar(threshold))          // [K] bool
                : torch.zeros(new long[]{xf.size(1)}, new TensorOptions(ScalarType.Bool));
        int outliers = (int) outlier.sum().item_long();
        Tensor regular = outliers == 0 ? xf : xf.masked_fill(outlier.unsqueeze(0), new Scalar(0.0));
        Tensor rowScale = regular.abs().amax(new long[]{1}, true).div(new Scalar(127.0)).clamp_min(new Scalar(1e-12)); // [M, 1]
        Tensor x8 = regular.div(rowScale).round()
                .clamp(new ScalarOptional(new Scalar(-127)), new ScalarOptional(new Scalar(127)))
                .to(ScalarType.Char);
        return new Int8Quantize.Result(x8, rowScale, outlier, outliers);
    }

    private static long[] indices(Tensor mask) {
        long[] flags = Tensors.toLongs(mask);
        int n = 0;
        for (long f : flags) if (f != 0) n++;
        long[] out = new long[n];
        for (int i = 0, j = 0; i < flags.length; i++) if (flags[i] != 0) out[j++] = i;
        return out;
    }
}
