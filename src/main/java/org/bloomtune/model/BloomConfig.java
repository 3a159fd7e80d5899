package org.bloomtune.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
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

    public BloomConfig {
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("n_head", numHeads);
        positive("n_layer", numLayers);
        if (hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException(
                    "hidden_size " + hiddenSize + " is not divisible by n_head " + numHeads);
        }
        if (!(layerNormEpsilon > 0) || !Double.isFinite(layerNormEpsilon)) {
            throw new IllegalArgumentException("layer_norm_epsilon must be a positive number, got " + layerNormEpsilon);
        }
    }

    /** A config with BLOOM's released defaults for everything but the shape. */
    public static BloomConfig of(int vocabSize, int hiddenSize, int numHeads, int numLayers) {
        return new BloomConfig(vocabSize, hiddenSize, numHeads, numLayers, 1e-5, false, true, 1, 2, 3);
    }

    public int headDim() { return hiddenSize / numHeads; }

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
        String text;
        try {
            text = Files.readString(configJson);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + configJson + ": " + e.getMessage(), e);
        }
        try {
            JsonElement root = JsonParser.parseString(text);
            if (!root.isJsonObject()) throw new IllegalArgumentException("not a JSON object");
            return fromJson(root.getAsJsonObject());
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(configJson + ": not valid JSON (" + e.getMessage() + ")", e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    /** Reads HF spellings and their aliases; unknown fields are ignored, as transformers does. */
    public static BloomConfig fromJson(JsonObject o) {
        String modelType = o.has("model_type") ? o.get("model_type").getAsString() : "bloom";
        if (!modelType.equals("bloom")) {
            throw new IllegalArgumentException("model_type is '" + modelType + "', expected 'bloom'");
        }
        return new BloomConfig(
                requiredInt(o, "vocab_size"),
                requiredInt(o, "hidden_size", "n_embed"),
                requiredInt(o, "n_head", "num_attention_heads"),
                requiredInt(o, "n_layer", "num_hidden_layers"),
                number(o, "layer_norm_epsilon", 1e-5),
                bool(o, "apply_residual_connection_post_layernorm", false),
                bool(o, "tie_word_embeddings", true),
                (int) number(o, "bos_token_id", 1),
                (int) number(o, "eos_token_id", 2),
                (int) number(o, "pad_token_id", 3));
    }

    /** The {@code config.json} transformers writes for this shape. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("apply_residual_connection_post_layernorm", residualFromLayernorm);
        JsonElement arch = JsonParser.parseString("[\"BloomForCausalLM\"]");
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
            if (o.has(key) && !o.get(key).isJsonNull()) return toInt(o, key);
        }
        String also = aliases.length == 0 ? "" : " (or " + String.join(", ", aliases) + ")";
        throw new IllegalArgumentException("missing field " + name + also);
    }

    private static int toInt(JsonObject o, String key) {
        JsonElement v = o.get(key);
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException("field " + key + " is not a number: " + v);
        }
        double d = v.getAsDouble();
        if (d != Math.rint(d) || d > Integer.MAX_VALUE || d < Integer.MIN_VALUE) {
            throw new IllegalArgumentException("field " + key + " is not an integer: " + v);
        }
        return (int) d;
    }

    private static double number(JsonObject o, String key, double fallback) {
        if (!o.has(key) || o.get(key).isJsonNull()) return fallback;
        JsonElement v = o.get(key);
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException("field " + key + " is not a number: " + v);
        }
        return v.getAsDouble();
    }

    private static boolean bool(JsonObject o, String key, boolean fallback) {
        if (!o.has(key) || o.get(key).isJsonNull()) return fallback;
        JsonElement v = o.get(key);
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isBoolean()) {
            throw new IllegalArgumentException("field " + key + " is not a boolean: " + v);
        }
        return v.getAsBoolean();
    }

    private static String[] concat(String first, String[] rest) {
        String[] all = new String[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }

    private static void positive(String field, int value) {
        if (value <= 0) throw new IllegalArgumentException(field + " must be positive, got " + value);
    }
}
