package org.bloomtune.model;

import org.bloomtune.tensor.DType;

/**
 * How to place a checkpoint's weights.
 *
 * @param dtype  compute dtype: F32 (the CPU default), BF16, F16 (GPU only in practice), or F64
 *               (slow; for checking gradients against finite differences)
 * @param device libtorch device string: "cpu", "cuda", "cuda:1"
 */
public record LoadOptions(DType dtype, String device) {

    public LoadOptions {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("compute dtype must be fp32, bf16, fp16 or fp64, got " + dtype);
        }
        if (device == null || device.isBlank()) throw new IllegalArgumentException("device must be given");
    }

    public static LoadOptions defaults() { return new LoadOptions(DType.F32, "cpu"); }

    public LoadOptions withDtype(DType d) { return new LoadOptions(d, device); }

    public LoadOptions withDevice(String d) { return new LoadOptions(dtype, d); }
}
