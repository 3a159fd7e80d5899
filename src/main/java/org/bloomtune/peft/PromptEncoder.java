package org.bloomtune.peft;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The small trainable module in front of the prompt, as PEFT 0.10 builds it: P-tuning's
 * {@code PromptEncoder} (MLP, or LSTM + MLP head) and prefix tuning's {@code PrefixEncoder} with
 * {@code prefix_projection}. Its input is always the N virtual-token embeddings ({@code arange(N)}
 * looked up in {@code embedding}), so its output is one [N, width] tensor shared by every row. It
 * runs in float32 on libtorch ops (the LSTM is libtorch's), recorded for autograd when grad mode is
 * on; its weights are views of one packed parameter ({@link ParameterLayout}).
 */
public final class PromptEncoder {
    private enum Kind { MLP, LSTM, PROJECTION }

    private final Kind kind;
    private final ParameterLayout layout;
    private final int numLayers;
    private final int hidden;

    private PromptEncoder(Kind kind, ParameterLayout layout, int numLayers, int hidden) {
        this.kind = kind;
        this.layout = layout;
        this.numLayers = numLayers;
        this.hidden = hidden;
    }

    /** The encoder {@code config} describes, or null when the prompt is the trainable tensor itself. */
    public static PromptEncoder of(AdapterConfig config) {
        int n = config.numVirtualTokens();
        int h = config.tokenDim();
        EncoderConfig enc = config.encoder();
        List<ParameterLayout.Entry> e = new ArrayList<>();
        switch (config.peftType()) {
            case PROMPT_TUNING -> { return null; }
            case PREFIX_TUNING -> {
                if (!enc.prefixProjection()) return null;
                int e1 = enc.hiddenSize();
                e.add(entry("embedding.weight", n, h));
                linear(e, "transform.0", h, e1);
                linear(e, "transform.2", e1, config.promptWidth());
                return new PromptEncoder(Kind.PROJECTION, new ParameterLayout(e), 0, e1);
            }
            case P_TUNING -> {
                int e1 = enc.hiddenSize();
                e.add(entry("embedding.weight", n, h));
                if (enc.type() == EncoderType.MLP) {
                    linear(e, "mlp_head.0", h, e1);
                    linear(e, "mlp_head.2", e1, e1);
                    linear(e, "mlp_head.4", e1, h);
                    return new PromptEncoder(Kind.MLP, new ParameterLayout(e), 0, e1);
                }
                for (int l = 0; l < enc.numLayers(); l++) {
                    for (String dir : new String[]{"", "_reverse"}) {
                        e.add(entry("lstm_head.weight_ih_l" + l + dir, 4L * e1, l == 0 ? h : 2L * e1));
                        e.add(entry("lstm_head.weight_hh_l" + l + dir, 4L * e1, e1));
                        e.add(entry("lstm_head.bias_ih_l" + l + dir, 4L * e1));
                        e.add(entry("lstm_head.bias_hh_l" + l + dir, 4L * e1));
                    }
                }
                linear(e, "mlp_head.0", 2 * e1, 2 * e1);
                linear(e, "mlp_head.2", 2 * e1, h);
                return new PromptEncoder(Kind.LSTM, new ParameterLayout(e), enc.numLayers(), e1);
            }
        }
        throw new AssertionError(config.peftType());
    }

    private static ParameterLayout.Entry entry(String name, long... shape) { return new ParameterLayout.Entry(name, shape); }

    private static void linear(List<ParameterLayout.Entry> e, String name, long in, long out) {
        e.add(entry(name + ".weight", out, in));
        e.add(entry(name + ".bias", out));
    }

    public ParameterLayout layout() { return layout; }

    /** The prompt [N, width] from the packed weights (float32; belongs to the open scope). */
    public Tensor forward(Tensor packed) {
        Map<String, Tensor> w = layout.views(packed);
        Tensor x = w.get("embedding.weight");
        return switch (kind) {
            case MLP -> linear(torch.relu(linear(torch.relu(linear(x, w, "mlp_head.0")), w, "mlp_head.2")), w, "mlp_head.4");
            case PROJECTION -> linear(torch.tanh(linear(x, w, "transform.0")), w, "transform.2");
            case LSTM -> linear(torch.relu(linear(lstm(x, w), w, "mlp_head.0")), w, "mlp_head.2");
        };
    }

    private static Tensor linear(Tensor x, Map<String, Tensor> w, String name) {
        return torch.linear(x, w.get(name + ".weight"), new org.bytedeco.pytorch.TensorOptional(w.get(name + ".bias")));
    }

    /** libtorch's bidirectional LSTM over the N tokens as one sequence from zero states → [N, 2e]. */
    private Tensor lstm(Tensor x, Map<String, Tensor> w) {
        TensorVector params = new TensorVector();
        for (Map.Entry<String, Tensor> e : w.entrySet()) if (e.getKey().startsWith("lstm_head.")) params.push_back(e.getValue());
        TensorOptions f32 = new TensorOptions(ScalarType.Float).device(new org.bytedeco.pytorch.DeviceOptional(x.device()));
        Tensor zeros = torch.zeros(new long[]{2L * numLayers, 1, hidden}, f32);
        var out = torch.lstm(x.unsqueeze(0), new TensorVector(zeros, zeros), params, true, numLayers, 0.0, false, true, true);
        return out.get0().squeeze(0);
    }

    /**
     * Fresh weights as PyTorch initialises these modules (the values differ, torch's RNG being its
     * own): embedding N(0, 1); Linear weight and bias U(±1/√in); LSTM U(±1/√encoder_hidden_size).
     */
    public Tensor init(long seed) {
        try (PointerScope scope = new PointerScope()) {
            Generator g = torch.createCPUGenerator(seed);
            TensorVector parts = new TensorVector();
            for (ParameterLayout.Entry e : layout.entries()) {
                Tensor t = torch.empty(e.shape(), new TensorOptions(ScalarType.Float), new org.bytedeco.pytorch.MemoryFormatOptional());
                if (e.name().equals("embedding.weight")) {
                    t = torch.randn(e.shape(), new GeneratorOptional(g), new TensorOptions(ScalarType.Float));
                } else {
                    double bound = e.name().startsWith("lstm_head.") ? 1 / Math.sqrt(hidden) : 1 / Math.sqrt(fanIn(e));
                    t.uniform_(-bound, bound, new GeneratorOptional(g));
                }
                parts.push_back(t.reshape(-1));
            }
            return Tensors.escape(torch.cat(parts, 0));
        }
    }

    /** A Linear's input width: its weight's columns (the bias shares its layer's). */
    private long fanIn(ParameterLayout.Entry e) {
        String weight = e.name().replace(".bias", ".weight");
        return layout.entries().stream().filter(x -> x.name().equals(weight)).findFirst().orElseThrow().shape()[1];
    }
}
