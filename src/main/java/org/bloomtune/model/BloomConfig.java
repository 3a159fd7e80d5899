package org.bloomtune.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;

import java.nio.file.Path;

/**
 * The shape of a BLOOM model, as HuggingFace's {@code config.json} describes it.
 *
 * @param vocabSize         rows of the word embedding (BLOOM pads it past the tokenizer's size)
 * @param hiddenSize        model width ({@code hidden_size}, older files: {@code n_embed})
 * @param numHeads          attention heads ({@code n_head} / {@code num_attention_heads})
 * @param numLayers         transformer blocks ({@code n_layer} / {@code num_hidden_layers})
 * @param layerNormEpsilon  epsilon of every layer norm (1e-5 in released models)
 * @param residualFromLayernorm {@code apply_residual_connection_post_layernorm}: residual taken
 *                          after the layer norm instead of before (false in released models)
 * @param tieWordEmbeddings lm_head shares the word embedding (true in every BLOOM)
 * @param bosTokenId        beginning-of-sequence id
 * @param eosTokenId        end-of-sequence id, the default generation stop
 * @param padTokenId        padding id
 */
public record BloomConfig(
        int vocabSize,
        int hiddenSize,
        int numHeads,
        int numLayers,
        double layerNormEpsilon,
        boolean residualFromLayernorm,
        boolean tieWordEmbeddings,
        int bosTokenId,
        int eosTokenId,
        int padTokenId) {

    /** Bounds far past any released BLOOM (176B: hidden 14336, 70 layers, vocab 250880) that keep sizes in range. */
    static final int MAX_LAYERS = 4096;
    static final int MAX_HIDDEN = 1 << 17;
    static final int MAX_VOCAB = 1 << 24;

    public BloomConfig {
        positive("vocab_size", vocabSize, MAX_VOCAB);
        positive("hidden_size", hiddenSize, MAX_HIDDEN);
        positive("n_head", numHeads, hiddenSize);
        positive("n_layer", numLayers, MAX_LAYERS);
        if (hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException(
                    "hidden_size " + hiddenSize + " is not divisible by n_head " + numHeads);
        }
        if (!(layerNormEpsilon > 0) || !Double.isFinite(layerNormEpsilon)) {
            throw new IllegalArgumentException("layer_norm_epsilon must be a positive number, got " + layerNormEpsilon);
        }
        tokenId("bos_token_id", bosTokenId, vocabSize);
        tokenId("eos_token_id", eosTokenId, vocabSize);
        tokenId("pad_token_id", padTokenId, vocabSize);
    }

    /** A config with BLOOM's released defaults for everything but the shape. */
    public static BloomConfig of(int vocabSize, int hiddenSize, int numHeads, int numLayers) {
        return new BloomConfig(vocabSize, hiddenSize, numHeads, numLayers, 1e-5, false, true, 1, 2, 3);
    }

    public int headDim() { return hiddenSize / numHeads; }

    /** Width of one prefix-tuning position: every layer's key and value, 2 · layers · hidden. */
    public int prefixWidth() { return 2 * numLayers * hiddenSize; }

    /** Parameters of the model (the tied lm_head counted once). */
    public long parameterCount() {
        long h = hiddenSize;
        long block = 3 * h * h + 3 * h   // query_key_value
                + h * h + h              // self_attention.dense
                + 4 * h * h + 4 * h      // mlp.dense_h_to_4h
                + 4 * h * h + h          // mlp.dense_4h_to_h
                + 4 * h;                 // two layer norms
        return (long) vocabSize * h + 2 * h + numLayers * block + 2 * h;
    }

    public static BloomConfig read(Path configJson) {
        JsonObject o = Json.readObject(configJson);
        try {
            return fromJson(o);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    /** Reads HF spellings and their aliases; unknown fields are ignored, as transformers does. */
    public static BloomConfig fromJson(JsonObject o) {
        String modelType = Json.has(o, "model_type") ? Json.requiredString(o, "model_type") : "bloom";
        if (!modelType.equals("bloom")) {
            throw new IllegalArgumentException("model_type is '" + modelType + "', expected 'bloom'");
        }
        return new BloomConfig(
                requiredInt(o, "vocab_size"),
                requiredInt(o, "hidden_size", "n_embed"),
                requiredInt(o, "n_head", "num_attention_heads"),
                requiredInt(o, "n_layer", "num_hidden_layers"),
                Json.number(o, "layer_norm_epsilon", 1e-5),
                Json.bool(o, "apply_residual_connection_post_layernorm", false),
                Json.bool(o, "tie_word_embeddings", true),
                Json.optionalInt(o, "bos_token_id", 1),
                Json.optionalInt(o, "eos_token_id", 2),
                Json.optionalInt(o, "pad_token_id", 3));
    }

    /** The {@code config.json} transformers writes for this shape. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("apply_residual_connection_post_layernorm", residualFromLayernorm);
        JsonArray arch = new JsonArray();
        arch.add("BloomForCausalLM");
        o.add("architectures", arch);
        o.addProperty("attention_dropout", 0.0);
        o.addProperty("bos_token_id", bosTokenId);
        o.addProperty("eos_token_id", eosTokenId);
        o.addProperty("hidden_dropout", 0.0);
        o.addProperty("hidden_size", hiddenSize);
        o.addProperty("initializer_range", 0.02);
        o.addProperty("layer_norm_epsilon", layerNormEpsilon);
        o.addProperty("model_type", "bloom");
        o.addProperty("n_head", numHeads);
        o.addProperty("n_layer", numLayers);
        o.addProperty("pad_token_id", padTokenId);
        o.addProperty("pretraining_tp", 1);
        o.addProperty("slow_but_exact", false);
        o.addProperty("tie_word_embeddings", tieWordEmbeddings);
        o.addProperty("use_cache", true);
        o.addProperty("vocab_size", vocabSize);
        return o;
    }

    private static int requiredInt(JsonObject o, String name, String... aliases) {
        for (String key : concat(name, aliases)) {
            if (Json.has(o, key)) return Json.toInt(o.get(key), key);
        }
        String also = aliases.length == 0 ? "" : " (or " + String.join(", ", aliases) + ")";
        throw new IllegalArgumentException("missing field " + name + also);
    }

    private static String[] concat(String first, String[] rest) {
        String[] all = new String[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }

    private static void tokenId(String field, int id, int vocabSize) {
        if (id < -1 || id >= vocabSize) {
            throw new IllegalArgumentException(field + " " + id + " lies outside the vocabulary [0, " + vocabSize + ")");
        }
    }

    private static void positive(String field, int value, int max) {
        if (value <= 0 || value > max) throw new IllegalArgumentException(field + " must lie in [1, " + max + "], got " + value);
    }
}
