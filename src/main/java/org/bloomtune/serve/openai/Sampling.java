package org.bloomtune.serve.openai;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.generate.GenerationConfig;

import java.security.SecureRandom;
import java.util.List;

/**
 * The generation fields shared by {@code /v1/completions} and {@code /v1/chat/completions}, checked
 * as OpenAI checks them: {@code max_tokens}, {@code temperature} (0: greedy), {@code top_p},
 * {@code n}, {@code stop} (up to 4), {@code seed}, {@code stream}, and vLLM's {@code top_k},
 * {@code repetition_penalty} and {@code ignore_eos}. Fields BloomTune cannot honour are refused, not ignored.
 */
record Sampling(int maxTokens, double temperature, double topP, int topK, double repetitionPenalty, Long seed, int n,
                List<String> stops, boolean stream, boolean includeUsage, boolean ignoreEos) {
    private static final SecureRandom SEEDS = new SecureRandom();

    static Sampling parse(JsonObject body, String maxTokensField, int defaultMaxTokens, int maxTokensLimit, int maxN) {
        for (String penalty : List.of("presence_penalty", "frequency_penalty")) {
            if (Fields.number(body, penalty, 0, -2, 2) != 0) throw ApiException.unsupported(penalty, "'" + penalty + "' is not supported; use repetition_penalty");
        }
        JsonElement bias = Fields.get(body, "logit_bias");
        if (bias != null && !(bias.isJsonObject() && bias.getAsJsonObject().isEmpty())) throw ApiException.unsupported("logit_bias", "'logit_bias' is not supported");
        int maxTokens = (int) Fields.integer(body, maxTokensField, defaultMaxTokens, 1, maxTokensLimit);
        double temperature = Fields.number(body, "temperature", 1.0, 0, 2);
        double topP = Fields.number(body, "top_p", 1.0, 0, 1);
        if (topP == 0) throw ApiException.invalid("top_p", "'top_p' must be greater than 0");
        int topK = (int) Fields.integer(body, "top_k", 0, -1, Integer.MAX_VALUE);
        double repetition = Fields.number(body, "repetition_penalty", 1.0, 0, 100);
        if (repetition == 0) throw ApiException.invalid("repetition_penalty", "'repetition_penalty' must be greater than 0");
        JsonElement seedField = Fields.get(body, "seed");
        Long seed = seedField == null ? null : Fields.integer(seedField, "seed", Long.MIN_VALUE, Long.MAX_VALUE);
        int n = (int) Fields.integer(body, "n", 1, 1, maxN);
        List<String> stops = Fields.strings(body, "stop", 4);
        for (String s : stops) if (s.isEmpty()) throw ApiException.invalid("stop", "stop strings must not be empty");
        boolean stream = Fields.bool(body, "stream", false);
        JsonElement options = Fields.get(body, "stream_options");
        boolean usage = false;
        if (options != null) {
            if (!options.isJsonObject()) throw ApiException.invalid("stream_options", "'stream_options' must be an object");
            if (!stream) throw ApiException.invalid("stream_options", "'stream_options' is only allowed with stream: true");
            usage = Fields.bool(options.getAsJsonObject(), "include_usage", false);
        }
        boolean ignoreEos = Fields.bool(body, "ignore_eos", false);
        return new Sampling(maxTokens, temperature, topP, Math.max(0, topK), repetition, seed, n, stops, stream, usage, ignoreEos);
    }

    Sampling withMaxTokens(int tokens) {
        return new Sampling(tokens, temperature, topP, topK, repetitionPenalty, seed, n, stops, stream, includeUsage, ignoreEos);
    }

    /** Choice {@code index}'s config: greedy at temperature 0, else sampling seeded by {@code seed + index} (or at random). */
    GenerationConfig config(int index, long modelEos) {
        long eosTokenId = ignoreEos ? -1 : modelEos;
        if (temperature == 0) return GenerationConfig.greedy(maxTokens, eosTokenId).withRepetitionPenalty(repetitionPenalty);
        long s = seed != null ? seed + index : SEEDS.nextLong();
        return GenerationConfig.sampling(maxTokens, temperature, topK, topP, eosTokenId, s).withRepetitionPenalty(repetitionPenalty);
    }
}
