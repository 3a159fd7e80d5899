package org.bloomtune.peft;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;
import org.bloomtune.model.BloomConfig;

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
    /** Far beyond PEFT's guidance (10–20 virtual tokens for simple tasks, 50–100 for generation). */
    public static final int MAX_VIRTUAL_TOKENS = 4096;

    public AdapterConfig {
        if (numVirtualTokens < 1 || numVirtualTokens > MAX_VIRTUAL_TOKENS) {
            throw new IllegalArgumentException("num_virtual_tokens must lie in [1, " + MAX_VIRTUAL_TOKENS + "], got " + numVirtualTokens);
        }
        if (tokenDim < 1 || tokenDim > 1 << 17) throw new IllegalArgumentException("token_dim must lie in [1, 131072], got " + tokenDim);
        if (init == PromptInit.TEXT && (initText == null || initText.isEmpty())) {
            throw new IllegalArgumentException("prompt_tuning_init TEXT needs prompt_tuning_init_text");
        }
    }

    public static AdapterConfig forModel(BloomConfig model, int numVirtualTokens, PromptInit init, String initText, String baseModel) {
        return new AdapterConfig(numVirtualTokens, model.hiddenSize(), init, initText, baseModel, null,
                model.numLayers(), model.numHeads());
    }

    public static AdapterConfig read(Path file) {
        JsonObject o = Json.readObject(file);
        try {
            require(o, "peft_type", "PROMPT_TUNING");
            require(o, "task_type", "CAUSAL_LM");
            if (Json.optionalInt(o, "num_transformer_submodules", 1) != 1) {
                throw new IllegalArgumentException("num_transformer_submodules must be 1 for a causal LM");
            }
            PromptInit init = Json.has(o, "prompt_tuning_init") ? PromptInit.parse(Json.requiredString(o, "prompt_tuning_init")) : PromptInit.RANDOM;
            return new AdapterConfig(Json.requiredInt(o, "num_virtual_tokens"), Json.requiredInt(o, "token_dim"), init,
                    Json.optionalString(o, "prompt_tuning_init_text"), Json.optionalString(o, "base_model_name_or_path"),
                    Json.optionalString(o, "tokenizer_name_or_path"), Json.optionalInt(o, "num_layers", 0),
                    Json.optionalInt(o, "num_attention_heads", 0));
        } catch (IllegalArgumentException e) {
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
        String v = Json.requiredString(o, key);
        if (!v.equals(expected)) throw new IllegalArgumentException(key + " is " + v + ", expected " + expected);
    }
}
