package org.bloomtune.model;

import org.bloomtune.kernels.RowKernel;
import org.bytedeco.pytorch.Tensor;

/**
 * A frozen linear layer with an int8 weight and a floating-point bias, multiplied by the kernel
 * chosen at load (or, while autograd records, through the dequantized weight: {@link Int8Weight#matmul}).
 */
public final class Int8Linear implements Linear {
    private final Int8Weight weight;
    private final Tensor bias;
    private final Int8Kernel kernel;

    public Int8Linear(Int8Weight weight, Tensor bias, Int8Kernel kernel) {
        this.weight = weight;
        this.bias = bias;
        this.kernel = kernel;
    }

    @Override
    public Tensor forward(Tensor x) {
        return weight.matmul(x, kernel, bias);
    }

    @Override
    public RowKernel rowKernel(Tensor x2d) { return kernel.rowKernel(x2d, weight, bias); }

    public Int8Weight weight() { return weight; }

    @Override
    public long inFeatures() { return weight.inFeatures(); }

    @Override
    public long outFeatures() { return weight.outFeatures(); }

    @Override
    public long residentBytes() { return weight.residentBytes() + bias.nbytes(); }

    @Override
    public void close() {
        weight.close();
        bias.close();
    }
}
