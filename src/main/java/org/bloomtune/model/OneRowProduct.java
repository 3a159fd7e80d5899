package org.bloomtune.model;

import org.bloomtune.kernels.Bf16RowsLinear;
import org.bloomtune.kernels.F32RowsLinear;
import org.bloomtune.kernels.RowsArgmax;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * {@code x Wᵀ + b} for the dense layers and the lm_head ({@link #linear}), with faster paths for a
 * decode step's few rows: libtorch sends a one-row {@code linear} to the matrix–matrix kernel, which
 * streams W at a fraction of the memory bandwidth ({@code benchmarks/FINDINGS.md}), and decoding
 * reads every weight once per token, so that rate is the decode rate. float32 batches of 1 to
 * {@link F32RowsLinear#MAX_ROWS} rows go to {@link F32RowsLinear} and bfloat16 batches of up to
 * {@link Bf16RowsLinear#MAX_ROWS} rows to {@link Bf16RowsLinear} where the CPU has AVX-512F /
 * AVX512_BF16 (the kernels a native decode step calls, with no BLAS threads beside them); one
 * float32 row elsewhere, and one float64 row, go through BLAS's matrix–vector product
 * ({@code addmv}, at the memory's rate); the rest to {@code linear}.
 */
final class OneRowProduct {
    private OneRowProduct() {}

    /** {@code x} [..., in] → [..., out] by the fastest path that takes it; {@code bias} may be null. */
    static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        if (F32RowsLinear.applies(x, weight, bias)) return F32RowsLinear.forward(x, weight, bias);
        if (applies(x, weight)) return forward(x, weight, bias);
        if (Bf16RowsLinear.applies(x, weight, bias)) return Bf16RowsLinear.forward(x, weight, bias);
        return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
    }

    /** {@link #linear} of {@code x} [rows, in], each row's argmax merged into {@code picks} (as the row kernels write, where they take it). */
    static Tensor linear(Tensor x, Tensor weight, Tensor bias, RowsArgmax.Picks picks) {
        if (F32RowsLinear.applies(x, weight, bias)) return F32RowsLinear.forward(x, weight, bias, picks);
        if (!applies(x, weight) && Bf16RowsLinear.applies(x, weight, bias)) return Bf16RowsLinear.forward(x, weight, bias, picks);
        Tensor y = linear(x, weight, bias);
        picks.mergeAll(y);
        return y;
    }

    /** True when {@code x} [..., in] holds exactly one row and {@code weight} is float32 or float64: BLAS's gemv takes it. */
    static boolean applies(Tensor x, Tensor weight) {
        int type = weight.scalar_type().value;
        return x.numel() == x.size(-1) && x.scalar_type().value == type
                && (type == ScalarType.Float.value || type == ScalarType.Double.value);
    }

    /** {@code x} [..., in] (one row) → [..., out]; {@code bias} may be null. */
    static Tensor forward(Tensor x, Tensor weight, Tensor bias) {
        long[] shape = Tensors.shapeWithLast(x, weight.size(0));
        Tensor row = x.reshape(x.size(-1));
        Tensor y = bias == null ? torch.mv(weight, row) : torch.addmv(bias, weight, row);
        return y.view(shape);
    }
}
