package org.bloomtune.model;

import org.bloomtune.kernels.RowKernel;
import org.bytedeco.pytorch.Tensor;

/**
 * {@code y = x Wᵀ + b} over the last axis. Implementations differ in how W is stored (dense
 * floating point, or 8-bit); all of them are frozen, so none keeps a weight gradient.
 */
public interface Linear extends AutoCloseable {

    /** {@code x} [..., in] → [..., out]. */
    Tensor forward(Tensor x);

    /**
     * The native row kernel {@link #forward} would call for {@code x2d} [rows, in] outside autograd —
     * a decode step's product, for a native caller ({@link DecodeBlocks}) — or null where it would
     * take another path.
     */
    default RowKernel rowKernel(Tensor x2d) { return null; }

    long inFeatures();

    long outFeatures();

    /** Bytes of weight and bias this layer keeps resident. */
    long residentBytes();

    @Override
    void close();
}
