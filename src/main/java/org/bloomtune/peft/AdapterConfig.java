package org.bloomtune.peft;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import org.bloomtune.model.BloomConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * PEFT's {@code adapter_config.json} for prompt tuning of a causal LM ({@code PromptTuningConfig}).
 *
 * @param numVirtualTokens    N, rows of the prompt
 * @param tokenDim            width of each virtual token (the model's hidden size)
 * @param init                how the prompt was initialised
 * @param initText            the TEXT init's text, or null
 * @param baseModel           {@code base_model_name_or_path}, or null
 * @param tokenizer           {@code tokenizer_name_or_path}, or null
 * @param numLayers           the base model's layers (PEFT records it)
 * @param numAttentionHeads   the base model's heads (PEFT records it)
 */
public record AdapterConfig(int numVirtualTokens, int tokenDim, PromptInit init, String initText,
                            String baseModel, String tokenizer, int numLayers, int numAttentionHeads) {
    public static final String FILE = "adapter_config.json";

    public AdapterConfig {
        if (numVirtualTokens < 1) throw new IllegalArgumentException("num_virtual_tokens must be >= 1, got " + numVirtualTokens);
        if (tokenDim < 1) throw new IllegalArgumentException("token_dim must be >= 1, got " + tokenDim);
        if (init == PromptInit.TEXT && (initText == null || initText.isEmpty())) {
            throw new IllegalArgumentException("prompt_tuning_init TEXT needs prompt_tuning_init_text");
        }
    }

    public static AdapterConfig forModel(BloomConfig model, int numVirtualTokens, PromptInit init, String initText, String baseModel) {
        return new AdapterConfig(numVirtualTokens, model.hiddenSize(), init, initText, baseModel, null,
                model.numLayers(), model.numHeads());
    }

    public static AdapterConfig read(Path file) {
        JsonObject o;
        try {
            JsonElement root = JsonParser.parseString(Files.readString(file));
            if (!root.isJsonObject()) throw new IllegalArgumentException(file + ": not a JSON object");
            o = root.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(file + ": not valid JSON (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
        try {
            require(o, "peft_type", "PROMPT_TUNING");
            require(o, "task_type", "CAUSAL_LM");
            if (o.has("num_transformer_submodules") && !o.get("num_transformer_submodules").isJsonNull()
                    && o.get("num_transformer_submodules").getAsInt() != 1) {
                throw new IllegalArgumentException("num_transformer_submodules must be 1 for a causal LM");
            }
            return new AdapterConfig(integer(o, "num_virtual_tokens"), integer(o, "token_dim"),
                    o.has("prompt_tuning_init") ? PromptInit.parse(o.get("prompt_tuning_init").getAsString()) : PromptInit.RANDOM,
                    string(o, "prompt_tuning_init_text"), string(o, "base_model_name_or_path"),
                    string(o, "tokenizer_name_or_path"), optionalInt(o, "num_layers"), optionalInt(o, "num_attention_heads"));
        } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** The JSON PEFT 0.10's {@code save_pretrained} writes (keys sorted, nulls kept). */
    public String toJson() {
        JsonObject o = new JsonObject();
        o.add("auto_mapping", JsonNull.INSTANCE);
        o.add("base_model_name_or_path", nullable(baseModel));
        o.addProperty("inference_mode", true);
        o.addProperty("num_attention_heads", numAttentionHeads);
        o.addProperty("num_layers", numLayers);
        o.addProperty("num_transformer_submodules", 1);
        o.addProperty("num_virtual_tokens", numVirtualTokens);
        o.addProperty("peft_type", "PROMPT_TUNING");
        o.addProperty("prompt_tuning_init", init.name());
        o.add("prompt_tuning_init_text", nullable(initText));
        o.add("revision", JsonNull.INSTANCE);
        o.addProperty("task_type", "CAUSAL_LM");
        o.addProperty("token_dim", tokenDim);
        o.add("tokenizer_kwargs", JsonNull.INSTANCE);
        o.add("tokenizer_name_or_path", nullable(tokenizer));
        return new GsonBuilder().serializeNulls().setPrettyPrinting().create().toJson(o) + "\n";
    }

    private static JsonElement nullable(String s) {
        return s == null ? JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(s);
    }

    private static void require(JsonObject o, String key, String expected) {
        JsonElement v = o.get(key);
        if (v == null || v.isJsonNull()) throw new IllegalArgumentException("missing field " + key);
        if (!v.getAsString().equals(expected)) {
            throw new IllegalArgumentException(key + " is " + v.getAsString() + ", expected " + expected);
        }
    }

    private static int integer(JsonObject o, String key) {
        JsonElement v = o.get(key);
        if (v == null || v.isJsonNull()) throw new IllegalArgumentException("missing field " + key);
        if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber()) {
            throw new IllegalArgumentException("field " + key + " is not a number: " + v);
        }
        return v.getAsInt();
    }

    private static int optionalInt(JsonObject o, String key) {
        return o.has(key) && !o.get(key).isJsonNull() ? integer(o, key) : 0;
    }

    private static String string(JsonObject o, String key) {
        JsonElement v = o.get(key);
        return v == null || v.isJsonNull() ? null : v.getAsString();
    }
}
