package org.bloomtune.serve;

import org.bloomtune.generate.GenerationConfig;

import java.util.List;

/**
 * One row of generation for the scheduler: the task (or the bare model) by name, the prompt's token
 * ids, how to pick tokens, stop strings, and how many alternatives to report per token
 * ({@code logprobs} -1: no log-probabilities at all; 0: the chosen token's only).
 */
public record GenerationRequest(String model, long[] promptIds, GenerationConfig config, List<String> stops, int logprobs) {
    public GenerationRequest {
        if (promptIds == null || promptIds.length == 0) throw new IllegalArgumentException("the prompt is empty");
        stops = List.copyOf(stops);
        for (String s : stops) if (s.isEmpty()) throw new IllegalArgumentException("stop strings must not be empty");
    }
}
