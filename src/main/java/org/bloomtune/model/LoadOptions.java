package org.bloomtune.model;

import org.bloomtune.tensor.DType;

/**
 * How to place a checkpoint's weights.
 *
 * @param dtype  compute dtype: F32 (the CPU default), BF16, or F16 (GPU only in practice)
 * @param device libtorch device string: "cpu", "cuda", "cuda:1"
 */
public record LoadOptions(DType dtype, String device) {

    public LoadOptions {
        if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("compute dtype must be fp32, bf16 or fp16, got " + dtype);
        }
        if (device == null || device.isBlank()) throw new IllegalArgumentException("device must be given");
    }

    public static LoadOptions defaults() { return new LoadOptions(DType.F32, "cpu"); }

    public LoadOptions withDtype(DType d) { return new LoadOptions(d, device); }

    public LoadOptions withDevice(String d) { return new LoadOptions(dtype, d); }
}
