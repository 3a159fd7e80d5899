package org.bloomtune.serve;

import org.bloomtune.generate.TextStream;
import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.generate.TokenPicker;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.KvCache;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tokenizer.Tokenizer;
import org.bytedeco.pytorch.Tensor;

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

    /**
     * The rows' next tokens from one forward of {@code input} (extending {@code cache}), each
     * picked and reported by its row. When every row's pick is the plain argmax of its logits, the
     * lm_head takes it as it writes them and no row's logits are copied out.
     */
    static void pickNext(BloomModel model, CausalLmInput input, KvCache cache, List<DecodeRow> rows) {
        if (rows.stream().allMatch(DecodeRow::picksArgmax)) {
            long[] tokens = model.nextTokenArgmax(input, cache);
            for (int r = 0; r < tokens.length; r++) rows.get(r).acceptOrFail(tokens[r]);
            return;
        }
        float[] logits;
        try (Tensor last = model.nextTokenLogits(input, cache)) {
            logits = Tensors.toFloats(last);
        }
        int vocab = logits.length / rows.size();
        for (int r = 0; r < rows.size(); r++) rows.get(r).pickOrFail(Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab));
    }

    /** Greedy without a repetition penalty and without log-probabilities: the pick needs only the argmax. */
    private boolean picksArgmax() {
        return picker.plainArgmax() && request.logprobs() < 0;
    }

    /** Reports {@code token} as this row's next; a failure (in this row's sink, say) ends this row only, not the batch. */
    private void acceptOrFail(long token) {
        try {
            accept(token, null);
        } catch (RuntimeException e) {
            fail(e);
        }
    }

    /** Picks from this row's {@code logits} [V] (its own copy) and reports the token, as {@link #acceptOrFail}. */
    private void pickOrFail(float[] logits) {
        try {
            float[] raw = request.logprobs() >= 0 ? logits.clone() : null;
            accept(picker.pick(logits, seen), raw);
        } catch (RuntimeException e) {
            fail(e);
        }
    }

    /** {@code raw}: the row's logits as they came when log-probabilities were asked for, else null. */
    private void accept(long token, float[] raw) {
        seen.add(token);
        produced++;
        last = token;
        if (raw != null) pending.add(TokenLogprobs.of(raw, token, request.logprobs()));
        text.onToken(0, token);
        if (token == request.config().eosTokenId() || text.stopRow(0)) finish(FinishReason.STOP);
        else if (produced >= request.config().maxNewTokens()) finish(FinishReason.LENGTH);
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
