package org.bloomtune.serve.openai;

import org.bloomtune.serve.BatchScheduler;
import org.bloomtune.serve.QueueFullException;
import org.bloomtune.serve.RequestTimeoutException;
import org.bloomtune.serve.ServedBank;
import org.bloomtune.serve.ServerMetrics;
import org.bloomtune.tokenizer.Tokenizer;

/** What every endpoint reaches: the scheduler, the bank, the tokenizer, the limits and the metrics. */
record ServerContext(BatchScheduler scheduler, ServedBank bank, Tokenizer tokenizer, OpenAiServer.Options options, ServerMetrics metrics,
                     long eosTokenId, long vocabSize) {
    private static final double[] FIRST_TOKEN_BUCKETS = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

    /** How long to wait for a row's next output before giving up on it: past the scheduler's own deadline. */
    long eventWaitMillis() { return options.timeout().toMillis() + 5_000; }

    String tokenText(long id) { return tokenizer.decode(new long[]{id}); }

    void countTokens(int prompt, int completion) {
        metrics.count("bloomtune_prompt_tokens_total", "prompt tokens of answered requests", prompt);
        metrics.count("bloomtune_completion_tokens_total", "tokens returned to clients", completion);
    }

    void observeFirstToken(double seconds) {
        metrics.observe("bloomtune_time_to_first_token_seconds", "from a streamed request's arrival to its first text", FIRST_TOKEN_BUCKETS, seconds);
    }

    /** The status and error object for whatever a request failed with. */
    static ApiException toApi(RuntimeException e) {
        return switch (e) {
            case ApiException api -> api;
            case ServedBank.UnknownTaskException u -> new ApiException(404, "invalid_request_error", "model", "model_not_found", u.getMessage());
            case ServedBank.TaskExistsException x -> new ApiException(409, "invalid_request_error", "name", "already_exists", x.getMessage());
            case BatchScheduler.ContextLengthException c -> new ApiException(400, "invalid_request_error", "prompt", "context_length_exceeded", c.getMessage());
            case BatchScheduler.NotAClassifierException n -> new ApiException(400, "invalid_request_error", "model", "not_a_classifier", n.getMessage());
            case QueueFullException q -> new ApiException(429, "rate_limit_error", null, "rate_limit_exceeded", q.getMessage());
            case BatchScheduler.ShuttingDownException s -> new ApiException(503, "server_error", null, "shutting_down", s.getMessage());
            case RequestTimeoutException t -> new ApiException(504, "timeout", null, "timeout", t.getMessage());
            case IllegalArgumentException i -> new ApiException(400, "invalid_request_error", null, null, i.getMessage());
            default -> new ApiException(500, "server_error", null, null, "internal error: " + e);
        };
    }
}
