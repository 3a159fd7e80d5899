package org.bloomtune.model;

import org.bloomtune.kernels.Int8Rescale;
import org.bloomtune.kernels.Int8Quantize;
import org.bloomtune.kernels.Int8RowsLinear;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tensor.shim.AtenShim;
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

    /** {@code x} [M, K] float → [M, N] in x's dtype. */
    static Tensor matmul(Tensor x, Int8Weight w, double threshold) {
        return Scopes.inner(() -> quantizedMatmul(x, w, threshold));     // the quantized copies die here
    }

    private static Tensor quantizedMatmul(Tensor x, Int8Weight w, double threshold) {
        Tensor xf = x.to(ScalarType.Float).contiguous();
        Int8Quantize.Result q = quantize(xf, threshold, DEFAULT);
        // [M, N] buffers are the lm_head's logits (250880 columns): convert, scale and add the
        // outliers in place, and free the int32 accumulator at once, so one such buffer is alive.
        // Without outliers the scaled result goes straight into x's dtype; with them it stays float32
        // until the outlier product is added, so it is rounded once, as before.
        ScalarType target = q.outliers() == 0 ? x.scalar_type() : ScalarType.Float;
        Tensor y;
        try (Tensor acc = torch.empty(new long[]{x.size(0), w.outFeatures()}, new TensorOptions(ScalarType.Int), new MemoryFormatOptional())) {
            if (Int8RowsLinear.appliesIntMm(acc, q.x8(), w.values())) Int8RowsLinear.intMm(acc, q.x8(), w.values());
            else AtenShim.intMm(acc, q.x8(), w.values().t());
            if (Int8Rescale.applies(acc, q.rowScale(), w.scales(), target)) {
                y = Int8Rescale.apply(acc, q.rowScale(), w.scales(), target);
            } else {
                y = acc.to(ScalarType.Float);
                y.mul_(q.rowScale()).mul_(w.scales().unsqueeze(0));
            }
        }
        if (q.outliers() > 0) {
            Tensor cols = Tensors.fromLongs(indices(q.outlier()), q.outliers());
            Tensor wOut = w.values().index_select(1, cols).to(ScalarType.Float).mul_(w.scales().unsqueeze(1)); // [N, k]
            y.addmm_(xf.index_select(1, cols), wOut.t());
        }
        return y.to(x.scalar_type());
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
