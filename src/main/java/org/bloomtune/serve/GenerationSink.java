package org.bloomtune.serve;

import org.bloomtune.generate.TokenLogprobs;

import java.util.List;

/**
 * Where a generation row's output goes as it is produced. Called on the scheduler's thread: return
 * at once (hand the data to the thread that writes it).
 */
public interface GenerationSink {
    /**
     * Text that became final (held-back partial characters and partial stop strings come later),
     * with the log-probabilities of the tokens produced since the last call (empty unless asked for).
     */
    void onText(String text, List<TokenLogprobs> logprobs);

    /** The row is done: an end-of-sequence token or stop string ({@code STOP}) or the token limit. */
    void onFinish(FinishReason reason, int promptTokens, int completionTokens);

    /** The row failed (its deadline passed, the server is stopping, the model failed). */
    void onError(RuntimeException error);
}
