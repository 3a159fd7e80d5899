package org.bloomtune.model;

import org.bloomtune.kernels.DenseGemm;
import org.bloomtune.kernels.Bf16RowsLinear;
import org.bloomtune.kernels.F32RowsLinear;
import org.bloomtune.kernels.RowKernel;
import org.bytedeco.pytorch.Tensor;

/**
 * A linear layer with a floating-point weight [out, in] and bias [out]. products of many rows go to
 * the native GEMM of the weight's dtype ({@link DenseGemm}) (through {@link NativeOpGraph} when a reverse pass records them),
 * a decode step's few rows to {@link OneRowProduct}'s row kernels, the rest to libtorch's linear.
 */
public record DenseLinear(Tensor weight, Tensor bias) implements Linear {

    @Override
    public Tensor forward(Tensor x) {
        if (NativeOpGraph.applies(x, weight, bias)) return NativeOpGraph.forward(x, weight, bias);
        if (DenseGemm.appliesToLinear(x, weight, bias)) return DenseGemm.linear(x, weight, bias);
        return OneRowProduct.linear(x, weight, bias);
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) {
        if (DenseGemm.appliesToLinear(x2d, weight, bias)) return null;
        RowKernel f32 = F32RowsLinear.rowKernel(x2d, weight, bias);
        return f32 != null ? f32 : Bf16RowsLinear.rowKernel(x2d, weight, bias);
    }

    @Override
    public long inFeatures() { return weight.size(1); }

    @Override
    public long outFeatures() { return weight.size(0); }

    @Override
    public long residentBytes() { return weight.nbytes() + bias.nbytes(); }

    @Override
    public void close() {
        weight.close();
        bias.close();
    }
}
