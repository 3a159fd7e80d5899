package org.bloomtune.peft;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;
import org.bloomtune.model.BloomConfig;

import java.nio.file.Path;

/**
 * PEFT's {@code adapter_config.json} for a continuous prompt of a causal LM: {@code PromptTuningConfig},
 * {@code PromptEncoderConfig} (P-tuning) or {@code PrefixTuningConfig}.
 *
 * @param peftType            which member of the family
 * @param numVirtualTokens    N, rows of the prompt
 * @param tokenDim            width of each virtual token (the model's hidden size)
 * @param init                how the prompt was initialised
 * @param initText            the TEXT init's text, or null
 * @param baseModel           {@code base_model_name_or_path}, or null
 * @param tokenizer           {@code tokenizer_name_or_path}, or null
 * @param numLayers           the base model's layers (PEFT records it)
 * @param numAttentionHeads   the base model's heads (PEFT records it)
 * @param encoder             P-tuning's and prefix tuning's encoder fields; null for prompt tuning
 */
public record AdapterConfig(PeftType peftType, int numVirtualTokens, int tokenDim, PromptInit init, String initText,
                            String baseModel, String tokenizer, int numLayers, int numAttentionHeads, EncoderConfig encoder) {
    public static final String FILE = "adapter_config.json";
    /** Far beyond PEFT's guidance (10–20 virtual tokens for simple tasks, 50–100 for generation). */
    public static final int MAX_VIRTUAL_TOKENS = 4096;

    public AdapterConfig {
        java.util.Objects.requireNonNull(peftType, "peft_type");
        if ((encoder == null) != (peftType == PeftType.PROMPT_TUNING)) {
            throw new IllegalArgumentException(peftType + " " + (encoder == null ? "needs" : "takes no") + " encoder settings");
        }
        if (peftType == PeftType.P_TUNING && encoder.type() == null) {
            throw new IllegalArgumentException("P_TUNING needs encoder_reparameterization_type MLP or LSTM");
        }
        if (peftType == PeftType.PREFIX_TUNING && numLayers < 1) {
            throw new IllegalArgumentException("PREFIX_TUNING needs num_layers (the base model's) to size the prefix");
        }
        if (numVirtualTokens < 1 || numVirtualTokens > MAX_VIRTUAL_TOKENS) {
            throw new IllegalArgumentException("num_virtual_tokens must lie in [1, " + MAX_VIRTUAL_TOKENS + "], got " + numVirtualTokens);
        }
        if (tokenDim < 1 || tokenDim > 1 << 17) throw new IllegalArgumentException("token_dim must lie in [1, 131072], got " + tokenDim);
        if (init == PromptInit.TEXT && (initText == null || initText.isEmpty())) {
            throw new IllegalArgumentException("prompt_tuning_init TEXT needs prompt_tuning_init_text");
        }
    }

    /** Prompt tuning of {@code model}. */
    public static AdapterConfig forModel(BloomConfig model, int numVirtualTokens, PromptInit init, String initText, String baseModel) {
        return new AdapterConfig(PeftType.PROMPT_TUNING, numVirtualTokens, model.hiddenSize(), init, initText, baseModel, null,
                model.numLayers(), model.numHeads(), null);
    }

    /** P-tuning ({@code encoder} with a type) or prefix tuning ({@code encoder} without) of {@code model}. */
    public static AdapterConfig withEncoder(BloomConfig model, PeftType type, int numVirtualTokens, EncoderConfig encoder, String baseModel) {
        return new AdapterConfig(type, numVirtualTokens, model.hiddenSize(), PromptInit.RANDOM, null, baseModel, null,
                model.numLayers(), model.numHeads(), encoder);
    }

    /**
     * The width of one row of {@code prompt_embeddings}: the hidden size, or for prefix tuning the
     * keys and values of every layer, 2 · layers · hidden.
     */
    public int promptWidth() {
        return peftType == PeftType.PREFIX_TUNING ? 2 * numLayers * tokenDim : tokenDim;
    }

    public static AdapterConfig read(Path file) {
        JsonObject o = Json.readObject(file);
        try {
            String typeName = Json.requiredString(o, "peft_type");
            PeftType type = java.util.Arrays.stream(PeftType.values()).filter(t -> t.name().equals(typeName)).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("peft_type is " + typeName
                            + "; BloomTune reads PROMPT_TUNING, P_TUNING and PREFIX_TUNING"));
            require(o, "task_type", "CAUSAL_LM");
            if (Json.optionalInt(o, "num_transformer_submodules", 1) != 1) {
                throw new IllegalArgumentException("num_transformer_submodules must be 1 for a causal LM");
            }
            PromptInit init = Json.has(o, "prompt_tuning_init") ? PromptInit.parse(Json.requiredString(o, "prompt_tuning_init")) : PromptInit.RANDOM;
            int tokenDim = Json.requiredInt(o, "token_dim");
            return new AdapterConfig(type, Json.requiredInt(o, "num_virtual_tokens"), tokenDim, init,
                    Json.optionalString(o, "prompt_tuning_init_text"), Json.optionalString(o, "base_model_name_or_path"),
                    Json.optionalString(o, "tokenizer_name_or_path"), Json.optionalInt(o, "num_layers", 0),
                    Json.optionalInt(o, "num_attention_heads", 0), encoder(o, type, tokenDim));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** The encoder fields of a P-tuning or prefix config (PEFT's defaults where absent); null for prompt tuning. */
    private static EncoderConfig encoder(JsonObject o, PeftType type, int tokenDim) {
        int hidden = Json.optionalInt(o, "encoder_hidden_size", tokenDim);
        return switch (type) {
            case PROMPT_TUNING -> null;
            case P_TUNING -> new EncoderConfig(EncoderType.parse(Json.has(o, "encoder_reparameterization_type")
                    ? Json.requiredString(o, "encoder_reparameterization_type") : "MLP"), hidden,
                    Json.optionalInt(o, "encoder_num_layers", 2), Json.number(o, "encoder_dropout", 0.0), false);
            case PREFIX_TUNING -> new EncoderConfig(null, hidden, 2, 0.0, Json.bool(o, "prefix_projection", false));
        };
    }

    /** The JSON PEFT 0.10's {@code save_pretrained} writes for this type (keys sorted, nulls kept). */
    public String toJson() {
        JsonObject o = new JsonObject();
        o.add("auto_mapping", JsonNull.INSTANCE);
        o.add("base_model_name_or_path", nullable(baseModel));
        if (peftType == PeftType.P_TUNING) {
            o.addProperty("encoder_dropout", encoder.dropout());
            o.addProperty("encoder_hidden_size", encoder.hiddenSize());
            o.addProperty("encoder_num_layers", encoder.numLayers());
            o.addProperty("encoder_reparameterization_type", encoder.type().name());
        }
        if (peftType == PeftType.PREFIX_TUNING) o.addProperty("encoder_hidden_size", encoder.hiddenSize());
        o.addProperty("inference_mode", true);
        o.addProperty("num_attention_heads", numAttentionHeads);
        o.addProperty("num_layers", numLayers);
        o.addProperty("num_transformer_submodules", 1);
        o.addProperty("num_virtual_tokens", numVirtualTokens);
        o.addProperty("peft_type", peftType.name());
        if (peftType == PeftType.PREFIX_TUNING) o.addProperty("prefix_projection", encoder.prefixProjection());
        if (peftType == PeftType.PROMPT_TUNING) {
            o.addProperty("prompt_tuning_init", init.name());
            o.add("prompt_tuning_init_text", nullable(initText));
        }
        o.add("revision", JsonNull.INSTANCE);
        o.addProperty("task_type", "CAUSAL_LM");
        o.addProperty("token_dim", tokenDim);
        if (peftType == PeftType.PROMPT_TUNING) {
            o.add("tokenizer_kwargs", JsonNull.INSTANCE);
            o.add("tokenizer_name_or_path", nullable(tokenizer));
        }
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
