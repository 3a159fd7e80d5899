package org.bloomtune.serve;

import org.bloomtune.generate.TextStream;
import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.generate.TokenPicker;
import org.bloomtune.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One generation row in the scheduler: its own token picker (so sampling does not depend on the
 * other rows), the tokens it has seen (repetition penalty), its text stream (stop strings,
 * incomplete characters held back) and where its output goes.
 */
final class DecodeRow {
    final GenerationRequest request;
    final ServedBank.Lease lease;
    final long deadline;
    final AtomicBoolean cancelled = new AtomicBoolean();
    private final GenerationSink sink;
    private final TokenPicker picker;
    private final Set<Long> seen = new LinkedHashSet<>();
    private final TextStream text;
    private final List<TokenLogprobs> pending = new ArrayList<>();
    private int produced;
    private long last;
    private FinishReason finished;
    private boolean closed;
    private Runnable onEnd = () -> {};

    DecodeRow(GenerationRequest request, ServedBank.Lease lease, GenerationSink sink, Tokenizer tokenizer, long deadline) {
        this.request = request;
        this.lease = lease;
        this.sink = sink;
        this.deadline = deadline;
        this.picker = new TokenPicker(request.config());
        for (long id : request.promptIds()) seen.add(id);
        this.text = new TextStream(tokenizer, 1, request.stops(), (row, chunk) -> emit(chunk));
    }

    /** Picks the next token from this row's logits ({@code vocab} floats at {@code offset}) and reports it. */
    void accept(float[] logits, int offset, int vocab) {
        float[] row = Arrays.copyOfRange(logits, offset, offset + vocab);
        float[] raw = request.logprobs() >= 0 ? row.clone() : null;
        long token = picker.pick(row, seen);
        seen.add(token);
        produced++;
        last = token;
        if (raw != null) pending.add(TokenLogprobs.of(raw, token, request.logprobs()));
        text.onToken(0, token);
        if (token == request.config().eosTokenId() || text.stopRow(0)) finish(FinishReason.STOP);
        else if (produced >= request.config().maxNewTokens()) finish(FinishReason.LENGTH);
    }

    /** As {@link #accept}, but a failure (in this row's sink, say) ends this row only, not the batch. */
    void acceptOrFail(float[] logits, int offset, int vocab) {
        try {
            accept(logits, offset, vocab);
        } catch (RuntimeException e) {
            fail(e);
        }
    }

    long lastToken() { return last; }

    /** Runs {@code onEnd} once, when the row ends, before its sink hears of it. */
    void onEnd(Runnable onEnd) { this.onEnd = onEnd; }

    boolean isFinished() { return finished != null || closed; }

    private void finish(FinishReason reason) {
        finished = reason;
        text.finish();
        if (!pending.isEmpty()) emit("");
        end();
        sink.onFinish(reason, request.promptIds().length, produced);
    }

    /** Ends the row with an error unless it already ended. */
    void fail(RuntimeException error) {
        if (closed) return;
        end();
        sink.onError(error);
    }

    /** Ends the row silently (its client went away). */
    void drop() {
        if (!closed) end();
    }

    private void end() {
        closed = true;
        onEnd.run();
    }

    private void emit(String chunk) {
        if (chunk.isEmpty() && pending.isEmpty()) return;
        List<TokenLogprobs> logprobs = List.copyOf(pending);
        pending.clear();
        sink.onText(chunk, logprobs);
    }
}
