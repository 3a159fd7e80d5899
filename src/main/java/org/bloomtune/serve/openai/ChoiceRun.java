package org.bloomtune.serve.openai;

import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.serve.BatchScheduler;
import org.bloomtune.serve.FinishReason;
import org.bloomtune.serve.GenerationRequest;
import org.bloomtune.serve.GenerationSink;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The choices of one request, submitted to the scheduler as rows of their own, and their output
 * as one stream of events in the order it was produced. Cancelling the run frees every row.
 */
final class ChoiceRun {
    sealed interface Event permits Text, Finished, Failed {
        int choice();
    }

    record Text(int choice, String text, List<TokenLogprobs> logprobs) implements Event {}

    record Finished(int choice, FinishReason reason, int promptTokens, int completionTokens) implements Event {}

    record Failed(int choice, RuntimeException error) implements Event {}

    private final LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private final List<BatchScheduler.Submission> submissions = new ArrayList<>();
    private int open;

    /** Submits every choice; if one cannot be queued, those already queued are cancelled. */
    ChoiceRun(BatchScheduler scheduler, List<GenerationRequest> choices) {
        try {
            for (int i = 0; i < choices.size(); i++) {
                submissions.add(scheduler.submit(choices.get(i), sink(i)));
                open++;
            }
        } catch (RuntimeException e) {
            cancel();
            throw e;
        }
    }

    private GenerationSink sink(int choice) {
        return new GenerationSink() {
            @Override
            public void onText(String text, List<TokenLogprobs> logprobs) { events.add(new Text(choice, text, logprobs)); }

            @Override
            public void onFinish(FinishReason reason, int promptTokens, int completionTokens) {
                events.add(new Finished(choice, reason, promptTokens, completionTokens));
            }

            @Override
            public void onError(RuntimeException error) { events.add(new Failed(choice, error)); }
        };
    }

    /** True once every choice has finished or failed. */
    boolean done() { return open == 0; }

    /** The next event within {@code millis}, or null when none came (or all are done). */
    Event poll(long millis) throws InterruptedException {
        if (open == 0) return null;
        Event e = events.poll(millis, TimeUnit.MILLISECONDS);
        if (e instanceof Finished || e instanceof Failed) open--;
        return e;
    }

    /** The next event, or null once every choice has finished; fails when none comes within {@code millis}. */
    Event next(long millis) throws InterruptedException {
        if (open == 0) return null;
        Event e = poll(millis);
        if (e == null) throw new IllegalStateException("no output for " + millis / 1000 + " s");
        return e;
    }

    void cancel() { submissions.forEach(BatchScheduler.Submission::cancel); }
}
