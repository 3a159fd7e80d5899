package org.bloomtune.model;

import org.bloomtune.kernels.Int8Bf16Panels;
import org.bloomtune.kernels.Int8F32Panels;
import org.bloomtune.kernels.LlmInt8Panels;
import org.bloomtune.kernels.RowGather;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.kernels.RowsArgmax;
import org.bloomtune.tensor.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * How an inference-only model's int8 weights are kept in panels and multiplied: weight-only int8
 * with bfloat16 ({@link Int8Bf16Panels}) or float32 activations ({@link Int8F32Panels}, the same
 * panels), or LLM.int8 ({@link LlmInt8Panels}). The layers
 * and the tied word embedding in panels ({@link PanelInt8Linear}, {@link PanelInt8WordEmbedding})
 * hold one of these and nothing else of their mode.
 */
interface Int8Panels {
    /** {@code values} [n, k] int8 in this layout's panels; call where {@link #packs}. */
    Tensor pack(Tensor values);

    /** Whether {@code values} packs in this layout. */
    boolean packs(Tensor values);

    /** Rows {@code ids} [...] of the packed values, as the row-major values': [..., k] int8. */
    Tensor values(Tensor panels, Tensor ids);

    /** {@code x} [..., k] → [..., n] in x's dtype, plus {@code bias} (or null), each range of outputs merged into {@code picks} (or null). */
    Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias, RowsArgmax.Picks picks);

    /** The native call {@link #forward} makes for a decode step's {@code x2d}, or null where it does not apply. */
    RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor scales, Tensor bias);

    /** The compute dtype the layout's products give and its embedding rows come in. */
    ScalarType dtype();

    /** Rows {@code ids} of the word embedding dequantized as {@link Int8WordEmbedding#lookup} does: [..., k] in {@link #dtype}. */
    Tensor lookup(Tensor panels, Tensor scales, Tensor ids);

    /** {@link #lookup}'s native gather, for a greedy loop that checks the ids and keeps the rows in memory of its own. */
    RowGather gather(Tensor panels, Tensor scales);

    /**
     * The layout an inference-only model of this int8 mode and compute dtype keeps its weights in on
     * this CPU, or null where it keeps them row-major (a CPU without the kernels, an unsupported pair).
     */
    static Int8Panels of(Int8Options int8, DType dtype) {
        if (int8.mode() == Int8Mode.WEIGHT_ONLY && dtype == DType.BF16 && Int8Bf16Panels.supported()) return WEIGHT_ONLY_BF16;
        if (int8.mode() == Int8Mode.WEIGHT_ONLY && dtype == DType.F32 && Int8F32Panels.supported()) return WEIGHT_ONLY_F32;
        if (int8.mode() == Int8Mode.LLM_INT8 && (dtype == DType.F32 || dtype == DType.BF16) && LlmInt8Panels.supported()) {
            return llmInt8(int8.threshold(), dtype.scalarType());
        }
        return null;
    }

    /** Weight-only int8 against bfloat16 activations. */
    Int8Panels WEIGHT_ONLY_BF16 = weightOnly(true);

    /** Weight-only int8 against float32 activations, in the same panels. */
    Int8Panels WEIGHT_ONLY_F32 = weightOnly(false);

    /** Weight-only int8 in {@link Int8Bf16Panels}' panels, multiplied by bfloat16 rows or by float32 rows ({@link Int8F32Panels}). */
    private static Int8Panels weightOnly(boolean bf16) {
        return new Int8Panels() {
            @Override public Tensor pack(Tensor values) { return Int8Bf16Panels.pack(values); }
            @Override public boolean packs(Tensor values) { return Int8Bf16Panels.packs(values); }
            @Override public Tensor values(Tensor panels, Tensor ids) { return Int8Bf16Panels.values(panels, ids); }
            @Override public Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias, RowsArgmax.Picks picks) {
                return bf16 ? Int8Bf16Panels.forward(x, panels, scales, bias, picks) : Int8F32Panels.forward(x, panels, scales, bias, picks);
            }
            @Override public RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor scales, Tensor bias) {
                return bf16 ? Int8Bf16Panels.rowKernel(x2d, panels, scales, bias) : Int8F32Panels.rowKernel(x2d, panels, scales, bias);
            }
            @Override public ScalarType dtype() { return bf16 ? ScalarType.BFloat16 : ScalarType.Float; }
            @Override public Tensor lookup(Tensor panels, Tensor scales, Tensor ids) { return Int8Bf16Panels.rows(panels, scales, ids, dtype()); }
            @Override public RowGather gather(Tensor panels, Tensor scales) { return Int8Bf16Panels.gather(panels, scales, dtype()); }
        };
    }

    /** LLM.int8 with outlier {@code threshold}, computing in {@code dtype} (float32 or bfloat16). */
    static Int8Panels llmInt8(double threshold, ScalarType dtype) {
        return new Int8Panels() {
            @Override public Tensor pack(Tensor values) { return LlmInt8Panels.pack(values); }
            @Override public boolean packs(Tensor values) { return LlmInt8Panels.packs(values); }
            @Override public Tensor values(Tensor panels, Tensor ids) { return LlmInt8Panels.values(panels, ids); }
            @Override public Tensor forward(Tensor x, Tensor panels, Tensor scales, Tensor bias, RowsArgmax.Picks picks) {
                return LlmInt8Panels.forward(x, panels, scales, bias, threshold, picks);
            }
            @Override public RowKernel rowKernel(Tensor x2d, Tensor panels, Tensor scales, Tensor bias) {
                return LlmInt8Panels.rowKernel(x2d, panels, scales, bias, threshold);
            }
            @Override public ScalarType dtype() { return dtype; }
            @Override public Tensor lookup(Tensor panels, Tensor scales, Tensor ids) { return LlmInt8Panels.rows(panels, scales, ids, dtype); }
            @Override public RowGather gather(Tensor panels, Tensor scales) { return LlmInt8Panels.gather(panels, scales, dtype); }
        };
    }
}
