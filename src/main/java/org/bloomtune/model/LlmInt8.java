package org.bloomtune.model;

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
final class LlmInt8 {
    private LlmInt8() {}

    /** {@code x} [M, K] float → [M, N] in x's dtype. */
    static Tensor matmul(Tensor x, Int8Weight w, double threshold) {
        Tensor xf = x.to(ScalarType.Float);
        Tensor outliers = threshold > 0
                ? xf.abs().amax(new long[]{0}, false).ge(new Scalar(threshold))          // [K] bool
                : torch.zeros(new long[]{x.size(1)}, new TensorOptions(ScalarType.Bool));
        long[] outlierColumns = indices(outliers);
        Tensor regular = outlierColumns.length == 0 ? xf : xf.masked_fill(outliers.unsqueeze(0), new Scalar(0.0));
        Tensor rowScale = regular.abs().amax(new long[]{1}, true).div(new Scalar(127.0)).clamp_min(new Scalar(1e-12)); // [M, 1]
        Tensor x8 = regular.div(rowScale).round()
                .clamp(new ScalarOptional(new Scalar(-127)), new ScalarOptional(new Scalar(127)))
                .to(ScalarType.Char);
        Tensor acc = torch.empty(new long[]{x.size(0), w.outFeatures()}, new TensorOptions(ScalarType.Int), new MemoryFormatOptional());
        AtenShim.intMm(acc, x8, w.values().t());
        Tensor y = acc.to(ScalarType.Float).mul(rowScale).mul(w.scales().unsqueeze(0));         // [M, N]
        if (outlierColumns.length > 0) {
            Tensor cols = Tensors.fromLongs(outlierColumns, outlierColumns.length);
            Tensor wOut = w.values().index_select(1, cols).to(ScalarType.Float).mul(w.scales().unsqueeze(1)); // [N, k]
            y = y.add(xf.index_select(1, cols).matmul(wOut.t()));
        }
        return y.to(x.scalar_type());
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
