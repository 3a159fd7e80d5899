package org.bloomtune.generate;

/**
 * How to pick each new token.
 *
 * @param maxNewTokens      stop after this many new tokens per row
 * @param sample            false: greedy (argmax); true: sample from the processed distribution
 * @param temperature       divides the logits before sampling (sampling only)
 * @param topK              keep the k most likely tokens, 0 = off (sampling only)
 * @param topP              keep the smallest set whose probability reaches p, 1 = off (sampling only)
 * @param repetitionPenalty CTRL's penalty on tokens already in the row, 1 = off (greedy too)
 * @param eosTokenId        a row stops after emitting it; -1 = never
 * @param seed              seeds the sampler, so runs repeat exactly
 */
public record GenerationConfig(int maxNewTokens, boolean sample, double temperature, int topK, double topP,
                               double repetitionPenalty, long eosTokenId, long seed) {

    public GenerationConfig {
        if (maxNewTokens < 1) throw new IllegalArgumentException("max-new-tokens must be at least 1, got " + maxNewTokens);
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a positive number, got " + temperature);
        }
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must lie in (0, 1], got " + topP);
        if (!(repetitionPenalty > 0) || !Double.isFinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetition-penalty must be a positive number, got " + repetitionPenalty);
        }
    }

    public static GenerationConfig greedy(int maxNewTokens, long eosTokenId) {
        return new GenerationConfig(maxNewTokens, false, 1.0, 0, 1.0, 1.0, eosTokenId, 0);
    }

    public static GenerationConfig sampling(int maxNewTokens, double temperature, int topK, double topP,
                                            long eosTokenId, long seed) {
        return new GenerationConfig(maxNewTokens, true, temperature, topK, topP, 1.0, eosTokenId, seed);
    }

    public GenerationConfig withRepetitionPenalty(double penalty) {
        return new GenerationConfig(maxNewTokens, sample, temperature, topK, topP, penalty, eosTokenId, seed);
    }
}
