package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;

/**
 * {@code y = x Wᵀ + b} over the last axis. Implementations differ in how W is stored (dense
 * floating point, or 8-bit); all of them are frozen, so none keeps a weight gradient.
 */
public interface Linear extends AutoCloseable {

    /** {@code x} [..., in] → [..., out]. */
    Tensor forward(Tensor x);

    long inFeatures();

    long outFeatures();

    /** Bytes of weight and bias this layer keeps resident. */
    long residentBytes();

    @Override
    void close();
}
