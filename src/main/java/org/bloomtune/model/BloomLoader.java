package org.bloomtune.model;

import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.io.WeightSource;
import org.bloomtune.kernels.DensePanels;
import org.bloomtune.kernels.Int8RowsLinear;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Devices;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a {@link BloomModel} from a HuggingFace checkpoint: checks every name and shape against
 * the config first, then places each weight on the device in the compute dtype. Weights already
 * in that dtype on the CPU stay views of the memory-mapped file (no copy).
 */
final class BloomLoader {
    private final WeightSource source;
    private final BloomConfig config;
    private final LoadOptions options;
    private final DType dtype;
    private final Device device;
    private final Int8Options int8;
    private final Int8Kernel kernel;   // null without int8
    private final Int8Panels panels;   // the int8 weights' layout for inference on this CPU, or null
    private final String prefix;
    private boolean aliasesSource;
    private final Map<String, Tensor> loaded = new LinkedHashMap<>();

    private BloomLoader(WeightSource source, BloomConfig config, LoadOptions options, Device device) {
        this.source = source;
        this.config = config;
        this.options = options;
        this.dtype = options.dtype();
        this.device = device;
        this.int8 = options.int8();
        this.kernel = int8.enabled() ? Int8Kernel.of(int8) : null;
        this.panels = int8.enabled() ? Int8Panels.of(int8, dtype) : null;
        if (int8.mode() == Int8Mode.WEIGHT_ONLY && dtype == DType.F32 && !Int8RowsLinear.supported()) {
            System.getLogger("org.bloomtune").log(System.Logger.Level.INFO, "weight-only int8 with float32 activations multiplies the "
                    + "dequantized weight on this CPU (the float32 int8 kernel needs AVX2 and FMA); "
                    + "use bf16 compute (--dtype bf16) for libtorch's int8 kernel");
        }
        this.prefix = WeightNames.detectPrefix(source.names());
    }

    static BloomModel load(Path dir, LoadOptions options) {
        BloomConfig config = BloomConfig.read(HfCheckpoint.config(dir));
        Devices.requireAvailable(options.device());
        WeightSource source = HfCheckpoint.openWeights(dir);
        Device device = new Device(options.device());
        try {
            BloomLoader loader = new BloomLoader(source, config, options, device);
            loader.validate();
            BloomModel model = loader.build();
            ProcessMemory.trim();   // conversions and quantization leave freed float copies behind
            return model;
        } catch (RuntimeException e) {
            source.close();
            device.close();
            throw e;
        }
    }

    private void validate() {
        Map<String, long[]> expected = WeightNames.expected(config);
        List<String> missing = new ArrayList<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            String name = prefix + e.getKey();
            if (!source.names().contains(name)) {
                missing.add(name);
                continue;
            }
            long[] actual = source.shape(name);
            if (!Arrays.equals(actual, e.getValue())) {
                throw new IllegalArgumentException(source.description() + ": " + name + " has shape "
                        + Arrays.toString(actual) + " but config.json implies " + Arrays.toString(e.getValue()));
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(source.description() + ": missing " + missing.size()
                    + " weight(s): " + preview(missing));
        }
        List<String> unexpected = WeightNames.unexpected(source.names(), prefix, expected);
        if (!unexpected.isEmpty()) {
            throw new IllegalArgumentException(source.description() + ": unexpected weight(s) for a BLOOM with "
                    + config.numLayers() + " layers: " + preview(unexpected));
        }
        if (source.names().contains(WeightNames.LM_HEAD)) {
            long[] head = source.shape(WeightNames.LM_HEAD);
            if (!Arrays.equals(head, expected.get(WeightNames.WORD_EMBEDDINGS))) {
                throw new IllegalArgumentException(source.description() + ": lm_head.weight has shape "
                        + Arrays.toString(head) + ", not the word embedding's");
            }
        }
        if (!config.tieWordEmbeddings()) {
            throw new IllegalArgumentException(source.description()
                    + ": tie_word_embeddings=false is not supported; BLOOM ties lm_head to the word embeddings");
        }
    }

    private BloomModel build() {
        WordEmbedding wordEmbeddings = int8.enabled() ? int8WordEmbedding() : denseWordEmbedding();
        LayerNorm embeddingsNorm = layerNorm("word_embeddings_layernorm");
        List<BloomBlock> blocks = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) blocks.add(block(WeightNames.block(i)));
        LayerNorm lnF = layerNorm("ln_f");
        // lm_head is tied: it is the word embedding, so the file's copy (if any) is not loaded.
        if (!aliasesSource) source.close();
        return new BloomModel(config, options, device, wordEmbeddings, embeddingsNorm, blocks, lnF, loaded,
                aliasesSource ? source : null);
    }

    /** The word embedding as loaded, or in panels for an inference-only model whose CPU and shape allow it. */
    private WordEmbedding denseWordEmbedding() {
        Tensor weight = weight(WeightNames.WORD_EMBEDDINGS);
        if (!options.inferenceOnly() || !DensePanels.packs(weight)) return new DenseWordEmbedding(weight);
        PanelWordEmbedding packed = new PanelWordEmbedding(weight);
        loaded.put(WeightNames.WORD_EMBEDDINGS, packed.panels());
        weight.close();
        source.release(prefix + WeightNames.WORD_EMBEDDINGS);
        return packed;
    }

    /** The int8 word embedding, with its values in panels for an inference-only model whose mode, CPU and shape allow it. */
    private WordEmbedding int8WordEmbedding() {
        Int8Weight q = quantized(WeightNames.WORD_EMBEDDINGS);
        if (!packsInt8(q)) return new Int8WordEmbedding(q, kernel, dtype.scalarType());
        PanelInt8WordEmbedding packed = new PanelInt8WordEmbedding(q, panels);
        loaded.put(WeightNames.WORD_EMBEDDINGS, packed.panels());
        q.values().close();
        return packed;
    }

    /** Whether an int8 weight goes into panels: an inference-only model whose mode has a panel layout on this CPU ({@link Int8Panels#of}). */
    private boolean packsInt8(Int8Weight q) {
        return options.inferenceOnly() && panels != null && panels.packs(q.values());
    }

    private BloomBlock block(String p) {
        BloomAttention attention = new BloomAttention(
                linear(p + "self_attention.query_key_value"), linear(p + "self_attention.dense"), config.numHeads());
        BloomMlp mlp = new BloomMlp(linear(p + "mlp.dense_h_to_4h"), linear(p + "mlp.dense_4h_to_h"));
        return new BloomBlock(layerNorm(p + "input_layernorm"), attention,
                layerNorm(p + "post_attention_layernorm"), mlp, config.residualFromLayernorm());
    }

    private LayerNorm layerNorm(String name) {
        return new LayerNorm(weight(name + ".weight"), weight(name + ".bias"), config.layerNormEpsilon());
    }

    private Linear linear(String name) {
        if (int8.enabled()) {
            Int8Weight q = quantized(name + ".weight");
            return packsInt8(q) ? panelInt8Linear(name, q) : new Int8Linear(q, weight(name + ".bias"), kernel);
        }
        Tensor weight = weight(name + ".weight");
        if (options.inferenceOnly() && DensePanels.packs(weight)) return panelLinear(name, weight);
        return new DenseLinear(weight, weight(name + ".bias"));
    }

    /** The int8 layer with its values in panels (an inference-only model): the row-major values are dropped, the panels take their name. */
    private Linear panelInt8Linear(String name, Int8Weight q) {
        PanelInt8Linear layer = PanelInt8Linear.of(q, weight(name + ".bias"), panels);
        loaded.put(name + ".weight", layer.panels());
        q.values().close();
        return layer;
    }

    /** The layer with its weight in panels (an inference-only model): the row-major weight is dropped, the panels take its name. */
    private Linear panelLinear(String name, Tensor weight) {
        PanelLinear layer = PanelLinear.of(weight, weight(name + ".bias"));
        loaded.put(name + ".weight", layer.panels());
        weight.close();
        source.release(prefix + name + ".weight");        // a view of the mapped file, if it was one: its bytes are dead now
        return layer;
    }

    /**
     * Quantizes one weight straight from the file's tensor: only this tensor is ever held in
     * float32, never the whole model.
     */
    private Int8Weight quantized(String name) {
        try (PointerScope scope = new PointerScope()) {
            Int8Weight q = Int8Weight.quantize(source.get(prefix + name));
            Tensor values = Tensors.escape(q.values().to(device, q.values().scalar_type()));
            Tensor scales = Tensors.escape(q.scales().to(device, q.scales().scalar_type()));
            loaded.put(name, values);
            loaded.put(name + "_scale", scales);
            source.release(prefix + name);                // the file's copy is not needed any more
            return new Int8Weight(values, scales);
        }
    }

    private Tensor weight(String name) {
        try (Tensor raw = source.get(prefix + name)) {
            Tensor placed = raw.to(device, dtype.scalarType());
            if (source.aliasesStorage() && Tensors.sameData(raw, placed)) aliasesSource = true;
            else source.release(prefix + name);           // converted: the mapped bytes are dead
            loaded.put(name, placed);
            return placed;
        }
    }

    private static String preview(List<String> names) {
        return names.size() <= 6 ? String.join(", ", names)
                : String.join(", ", names.subList(0, 6)) + ", ... (" + (names.size() - 6) + " more)";
    }
}
