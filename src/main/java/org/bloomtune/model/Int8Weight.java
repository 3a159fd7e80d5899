package org.bloomtune.model;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tensor.shim.AtenShim;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A weight matrix [out, in] stored as int8 with one float32 scale per output row (absmax / 127):
 * {@code W ≈ values · scales[:, None]}. A quarter of float32's bytes.
 */
public record Int8Weight(Tensor values, Tensor scales) implements AutoCloseable {

    /**
     * Per-output-channel absmax quantization of {@code w} [out, in] (any float dtype), on w's
     * device. Rows go a block at a time, so the float32 temporaries stay under 64 MB: done whole,
     * bloom-560m's word embedding alone made five 1 GB temporaries.
     */
    public static Int8Weight quantize(Tensor w) {
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
        return values.narrow(0, start, n).to(dtype).mul_(scales.narrow(0, start, n).unsqueeze(1).to(dtype));
    }

    /** {@code x [..., in] · Wᵀ → [..., out]} in x's dtype, by {@code options.mode()}. */
    public Tensor matmul(Tensor x, Int8Options options) {
        long[] lead = new long[(int) x.dim() - 1];
        for (int i = 0; i < lead.length; i++) lead[i] = x.size(i);
        Tensor x2d = x.reshape(-1, inFeatures());
        Tensor y = switch (options.mode()) {
            case WEIGHT_ONLY -> weightOnly(x2d);
            case LLM_INT8 -> LlmInt8.matmul(x2d, this, options.threshold());
            case DEQUANTIZE, NONE -> torch.linear(x2d, dequantize(x.scalar_type()));
        };
        long[] shape = java.util.Arrays.copyOf(lead, lead.length + 1);
        shape[lead.length] = outFeatures();
        return y.view(shape);
    }

    /**
     * {@code _weight_int8pack_mm} where it is fast. In this libtorch build only its bfloat16 path
     * is vectorized; with float32 activations it costs ~2.3 ms per row of a 4096×1024 weight
     * (a 64-row batch: 145 ms against 7.6 ms dequantized, benchmarks/FINDINGS.md), so float32
     * batches of more than one row multiply the dequantized weight instead.
     */
    private Tensor weightOnly(Tensor x2d) {
        boolean bf16 = x2d.scalar_type().value == ScalarType.BFloat16.value;
        if (!bf16 && x2d.size(0) > 1) return torch.linear(x2d, dequantize(x2d.scalar_type()));
        return AtenShim.weightInt8PackMm(x2d.contiguous(), values, scales.to(x2d.scalar_type()));
    }

    public long residentBytes() { return values.nbytes() + scales.nbytes(); }

    @Override
    public void close() {
        values.close();
        scales.close();
    }
}
