package org.bloomtune.model;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Devices;

/**
 * How to place a checkpoint's weights.
 *
 * @param dtype  compute dtype: F32 (the CPU default), BF16, F16 (GPU only in practice), or F64
 *               (slow; for checking gradients against finite differences)
 * @param device libtorch device string: "cpu", "cuda", "cuda:1"
 * @param int8   8-bit weights ({@link Int8Options#NONE}: keep the checkpoint's precision)
 * @param attention how attention runs (HF's {@code attn_implementation}): EAGER by default
 * @param headBlockBytes working memory of the training head's vocabulary block, 0 = automatic
 *               (256 MiB; a quarter of that for int8 models, which are chosen for memory)
 * @param inferenceOnly the model will only generate or score, never train a prompt: the loader may
 *               then keep weights in the layouts the inference kernels read fastest (bfloat16 and
 *               float32 block layers and the tied head in {@link org.bloomtune.kernels.DensePanels}'
 *               panels on CPUs with AVX512_BF16 and AVX-512F respectively),
 *               and a reverse pass through them is refused. Off by default.
 */
public record LoadOptions(DType dtype, String device, Int8Options int8, AttentionKernel attention, long headBlockBytes,
                          boolean inferenceOnly) {

    public LoadOptions {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException("compute dtype must be fp32, bf16, fp16 or fp64, got " + dtype);
        }
        Devices.checkName(device);
        if (int8 == null) throw new IllegalArgumentException("int8 options must be given (Int8Options.NONE for none)");
        if (attention == null) throw new IllegalArgumentException("attention kernel must be given");
        if (headBlockBytes < 0 || (headBlockBytes > 0 && headBlockBytes < 1L << 20)) {
            throw new IllegalArgumentException("head_block_bytes must be 0 (automatic) or at least 1 MiB, got " + headBlockBytes);
        }
        if (int8.enabled() && dtype == DType.F64) throw new IllegalArgumentException("int8 weights need fp32, bf16 or fp16 compute, not fp64");
        boolean cpuKernel = int8.mode() == Int8Mode.WEIGHT_ONLY || int8.mode() == Int8Mode.LLM_INT8;
        if (cpuKernel && !device.equals("cpu")) {
            throw new IllegalArgumentException("int8 mode " + int8.mode() + " has a CPU kernel only; on " + device
                    + " use dequantize until a CUDA kernel is wired");
        }
    }

    public LoadOptions(DType dtype, String device, Int8Options int8, AttentionKernel attention, long headBlockBytes) {
        this(dtype, device, int8, attention, headBlockBytes, false);
    }

    public LoadOptions(DType dtype, String device, Int8Options int8) { this(dtype, device, int8, AttentionKernel.EAGER, 0); }

    public LoadOptions(DType dtype, String device) { this(dtype, device, Int8Options.NONE); }

    /** fp32 on the CPU, full precision, eager attention. */
    public static LoadOptions defaults() { return new LoadOptions(DType.F32, "cpu"); }

    public LoadOptions withDtype(DType d) { return new LoadOptions(d, device, int8, attention, headBlockBytes, inferenceOnly); }

    public LoadOptions withDevice(String d) { return new LoadOptions(dtype, d, int8, attention, headBlockBytes, inferenceOnly); }

    public LoadOptions withInt8(Int8Options o) { return new LoadOptions(dtype, device, o, attention, headBlockBytes, inferenceOnly); }

    public LoadOptions withAttention(AttentionKernel a) { return new LoadOptions(dtype, device, int8, a, headBlockBytes, inferenceOnly); }

    public LoadOptions withHeadBlockBytes(long bytes) { return new LoadOptions(dtype, device, int8, attention, bytes, inferenceOnly); }

    /** These options for a model that only generates or scores ({@link #inferenceOnly}). */
    public LoadOptions forInference() { return new LoadOptions(dtype, device, int8, attention, headBlockBytes, true); }
}
