package org.bloomtune.model;

import org.bloomtune.kernels.Int8Dequantize;
import org.bloomtune.kernels.Int8Quantize;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GradMode;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A weight matrix [out, in] stored as int8 with one float32 scale per output row (absmax / 127):
 * {@code W ≈ values · scales[:, None]}. A quarter of float32's bytes.
 */
public record Int8Weight(Tensor values, Tensor scales) implements AutoCloseable {

    /**
     * Per-output-channel absmax quantization of {@code w} [out, in] (any float dtype), on w's
     * device. A contiguous float32, bfloat16 or float16 CPU weight — a checkpoint's tensor as loaded — goes
     * through native/llm_int8_quantize.c with no outlier threshold: two passes over each row and no
     * temporaries at all. Others go through {@link #quantizeByBlocks}; both give the same bits.
     */
    public static Int8Weight quantize(Tensor w) {
        if (!Int8Quantize.available() || !Int8Quantize.accepts(w) || w.requires_grad()) return quantizeByBlocks(w);
        Int8Quantize.Result q = Int8Quantize.quantize(w, 0.0);
        q.outlier().close();
        try (Tensor rowScale = q.rowScale()) {
            return new Int8Weight(q.x8(), rowScale.view(w.size(0)));
        }
    }

    /**
     * The same quantization by libtorch ops, rows a block at a time, so the float32 temporaries stay
     * small: done whole, a large vocabulary's embedding makes several temporaries the size of the
     * float matrix. (Each block's temporaries are fresh allocations: loading a model this way costs
     * page faults several times its size.)
     */
    static Int8Weight quantizeByBlocks(Tensor w) {
        long out = w.size(0);
        long in = w.size(1);
        Tensor values = torch.empty(new long[]{out, in}, Tensors.options(DType.I8, w.device()), new MemoryFormatOptional());
        Tensor scales = torch.empty(new long[]{out}, Tensors.options(DType.F32, w.device()), new MemoryFormatOptional());
        long block = Math.max(1, (16L << 20) / Math.max(1, in));
        for (long start = 0; start < out; start += block) {
            long n = Math.min(block, out - start);
            try (PointerScope scope = new PointerScope()) {
                Tensor f = w.narrow(0, start, n).to(ScalarType.Float);
                Tensor s = f.abs().amax(new long[]{1}, false).div(new Scalar(127.0)).clamp_min(new Scalar(1e-12));
                values.narrow(0, start, n).copy_(f.div(s.unsqueeze(1)).round()
                        .clamp(new ScalarOptional(new Scalar(-127)), new ScalarOptional(new Scalar(127))));
                scales.narrow(0, start, n).copy_(s);
            }
        }
        return new Int8Weight(values, scales);
    }

    public long outFeatures() { return values.size(0); }

    public long inFeatures() { return values.size(1); }

    /** The float weight [out, in] in {@code dtype}: a transient the caller lets go after use. */
    public Tensor dequantize(ScalarType dtype) {
        return dequantizeRows(0, values.size(0), dtype);
    }

    /** Rows {@code start .. start + n} of the weight, dequantized (one buffer of their size, scaled in place). */
    public Tensor dequantizeRows(long start, long n, ScalarType dtype) {
        Tensor rows = values.narrow(0, start, n);
        Tensor rowScales = scales.narrow(0, start, n);
        if (Int8Dequantize.applies(rows, rowScales, dtype)) return Int8Dequantize.dequantize(rows, rowScales, dtype);
        return rows.to(dtype).mul_(rowScales.unsqueeze(1).to(dtype));
    }

    /**
     * {@code x [..., in] · Wᵀ (+ bias) → [..., out]} in x's dtype, by {@code kernel}. While autograd
     * records {@code x} (a reverse pass) under an open {@link Int8Backward}, the product goes to it
     * and stays out of libtorch's graph; with none open, the product multiplies the dequantized
     * weight, recorded, and the graph keeps the float copy until it dies.
     *
     * @param bias added to the result, or null
     */
    public Tensor matmul(Tensor x, Int8Kernel kernel, Tensor bias) {
        if (GradMode.is_enabled() && x.requires_grad()) {
            Int8Backward tape = Int8Backward.active();
            return tape != null ? tape.record(x, this, kernel, bias) : dequantizedLinear(x, bias);
        }
        return kernel.multiply(x.reshape(-1, inFeatures()), this, bias).view(Tensors.shapeWithLast(x, outFeatures()));
    }

    /** {@code x · Wᵀ (+ bias)} through the weight dequantized into a reused buffer (recorded when x records). */
    private Tensor dequantizedLinear(Tensor x, Tensor bias) {
        try (Tensor weight = DequantizeScratch.weight(this, x.scalar_type())) {
            return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
        }
    }

    public long residentBytes() { return values.nbytes() + scales.nbytes(); }

    @Override
    public void close() {
        values.close();
        scales.close();
    }
}
