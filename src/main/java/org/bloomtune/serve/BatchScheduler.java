package org.bloomtune.serve;

import org.bloomtune.classify.Classifier;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Prediction;
import org.bloomtune.generate.LeftPadded;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.KvCache;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tokenizer.Tokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Continuous batching over a prompt bank: one thread owns the model and runs a loop of
 * <em>admit, prefill, decode one step, release</em>. Requests for any task join the running decode
 * batch at a step boundary — prefilled together, each row behind its own soft prompt, then
 * appended to the batch's KV cache — and leave as soon as they are done, so a short request never
 * waits for a long one. Classification requests are answered between steps, all pending ones in
 * one mixed forward. The queue is bounded; every request has a deadline.
 */
public final class BatchScheduler implements AutoCloseable {
    /** A handle on a submitted generation: cancel it when its client goes away. */
    public interface Submission {
        void cancel();
    }

    private sealed interface Job permits Generate, Classify {}

    private record Generate(DecodeRow row) implements Job {}

    private record Classify(ServedBank.Lease lease, List<String> texts, long deadline, CompletableFuture<List<Classification>> answer) implements Job {}

    private static final long IDLE_WAIT_MILLIS = 50;
    private static final double[] ROWS_BUCKETS = {1, 2, 4, 8, 16, 32, 64, 128};
    private static final double[] TASKS_BUCKETS = {1, 2, 3, 4, 8, 16};

    private final BloomModel model;
    private final Tokenizer tokenizer;
    private final ServedBank bank;
    private final SchedulerOptions options;
    private final ServerMetrics metrics;
    private final LinkedBlockingQueue<Job> queue = new LinkedBlockingQueue<>();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicInteger active = new AtomicInteger();
    private final Thread loop;
    private volatile boolean accepting = true;
    private volatile boolean stopped;

    public BatchScheduler(BloomModel model, Tokenizer tokenizer, ServedBank bank, SchedulerOptions options, ServerMetrics metrics) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.bank = bank;
        this.options = options;
        this.metrics = metrics;
        metrics.gauge("bloomtune_queue_depth", "requests waiting to start", queued::get);
        metrics.gauge("bloomtune_active_rows", "rows admitted to the decode batch and not yet ended", active::get);
        this.loop = Thread.ofPlatform().name("bloomtune-scheduler").start(this::run);
    }

    public SchedulerOptions options() { return options; }

    /**
     * Queues a generation row; its output goes to {@code sink} (on the scheduler's thread).
     *
     * @throws ServedBank.UnknownTaskException no such task
     * @throws ContextLengthException          prompt, virtual tokens and new tokens exceed the context
     * @throws QueueFullException              too many requests wait already
     */
    public Submission submit(GenerationRequest request, GenerationSink sink) {
        ServedBank.Lease lease = bank.acquire(request.model());
        try {
            int needed = lease.virtualTokens() + request.promptIds().length + request.config().maxNewTokens();
            if (needed > options.contextLength()) {
                throw new ContextLengthException(options.contextLength(), lease.virtualTokens(), request.promptIds().length,
                        request.config().maxNewTokens());
            }
            DecodeRow row = new DecodeRow(request, lease, sink, tokenizer, deadline());
            enqueue(new Generate(row));
            return () -> row.cancelled.set(true);
        } catch (RuntimeException e) {
            lease.close();
            throw e;
        }
    }

    /**
     * Classifies {@code texts} with task {@code task}'s verbalizer, in one forward with whatever else
     * is pending (up to the batch size); the future fails on timeout or shutdown.
     */
    public CompletableFuture<List<Classification>> classify(String task, List<String> texts) {
        if (texts.isEmpty()) throw new IllegalArgumentException("no text to classify");
        ServedBank.Lease lease = bank.acquire(task);
        try {
            if (!lease.classifies()) throw new NotAClassifierException(task);
            CompletableFuture<List<Classification>> answer = new CompletableFuture<>();
            enqueue(new Classify(lease, List.copyOf(texts), deadline(), answer));
            return answer;
        } catch (RuntimeException e) {
            lease.close();
            throw e;
        }
    }

    private long deadline() { return System.nanoTime() + options.timeout().toNanos(); }

    private void enqueue(Job job) {
        if (!accepting) throw new ShuttingDownException();
        int waiting = queued.incrementAndGet();
        if (waiting > options.maxQueued()) {
            queued.decrementAndGet();
            metrics.count("bloomtune_rejected_total", "requests refused because the queue was full");
            throw new QueueFullException(waiting - 1);
        }
        queue.add(job);
    }

    /**
     * Stops taking requests, lets every admitted one finish (within {@code grace}), then stops the
     * loop; what is still running after {@code grace} fails.
     */
    public void shutdown(Duration grace) {
        accepting = false;
        long end = System.nanoTime() + grace.toNanos();
        while ((queued.get() > 0 || active.get() > 0) && System.nanoTime() < end) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        stopped = true;
        try {
            loop.join(TimeUnit.SECONDS.toMillis(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() { shutdown(Duration.ZERO); }

    // ---- the scheduler thread ------------------------------------------------------------------

    private void run() {
        try (GradMode off = GradMode.off(); DecodeBatch batch = new DecodeBatch(model)) {
            while (!stopped) {
                List<DecodeRow> newcomers = new ArrayList<>();
                List<Classify> classify = new ArrayList<>();
                if (!admit(batch.size(), newcomers, classify)) continue;
                if (!classify.isEmpty()) classify(classify);
                try {
                    if (!newcomers.isEmpty()) prefill(batch, newcomers);
                    if (batch.size() > 0) decode(batch);
                } catch (RuntimeException e) {
                    newcomers.forEach(r -> {
                        r.fail(e);
                        release(r);
                    });
                    batch.failAll(new IllegalStateException("the model failed: " + e.getMessage(), e));
                }
            }
            RuntimeException stopping = new ShuttingDownException();
            batch.failAll(stopping);
            for (Job j; (j = queue.poll()) != null; ) fail(j, stopping);
        }
    }

    /** Moves jobs from the queue: waits a little when idle. False when there is nothing to do. */
    private boolean admit(int running, List<DecodeRow> newcomers, List<Classify> classify) {
        if (running == 0 && queue.isEmpty()) {
            try {
                Job first = queue.poll(IDLE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
                if (first == null) return false;
                take(first, newcomers, classify);
            } catch (InterruptedException e) {
                stopped = true;
                return false;
            }
        }
        while (running + newcomers.size() < options.maxBatchRows() && classify.stream().mapToInt(c -> c.texts().size()).sum() < options.maxBatchRows()) {
            Job j = queue.poll();
            if (j == null) break;
            take(j, newcomers, classify);
        }
        return !newcomers.isEmpty() || !classify.isEmpty() || running > 0;
    }

    private void take(Job job, List<DecodeRow> newcomers, List<Classify> classify) {
        queued.decrementAndGet();
        long now = System.nanoTime();
        switch (job) {
            case Generate g when g.row().cancelled.get() -> release(g.row());
            case Generate g when now > g.row().deadline -> {
                g.row().fail(new RequestTimeoutException(options.timeout()));
                release(g.row());
            }
            case Generate g -> activate(g.row(), newcomers);
            case Classify c when now > c.deadline() -> {
                c.answer().completeExceptionally(new RequestTimeoutException(options.timeout()));
                c.lease().close();
            }
            case Classify c -> classify.add(c);
        }
    }

    /**
     * Counts the row as active from here until it ends — before its first token reaches the client
     * and down again before its last one does, so the gauge never lags what clients have seen.
     */
    private void activate(DecodeRow row, List<DecodeRow> newcomers) {
        active.incrementAndGet();
        row.onEnd(active::decrementAndGet);
        newcomers.add(row);
    }

    private void fail(Job job, RuntimeException error) {
        queued.decrementAndGet();
        switch (job) {
            case Generate g -> {
                g.row().fail(error);
                release(g.row());
            }
            case Classify c -> {
                c.answer().completeExceptionally(error);
                c.lease().close();
            }
        }
    }

    private static void release(DecodeRow row) { row.lease.close(); }

    /** All pending texts in mixed forwards, one per prompt shape (prefix or not, N) and at most a batch of texts each. */
    private void classify(List<Classify> jobs) {
        Map<SoftPrompt.Shape, List<Classify>> groups = new LinkedHashMap<>();
        for (Classify c : jobs) groups.computeIfAbsent(c.lease().shape(), k -> new ArrayList<>()).add(c);
        Map<Classify, List<Classification>> answers = new LinkedHashMap<>();
        for (List<Classify> group : groups.values()) {
            List<Classify> owners = new ArrayList<>();
            List<String> texts = new ArrayList<>();
            for (Classify c : group) {
                answers.put(c, new ArrayList<>());
                for (String t : c.texts()) {
                    owners.add(c);
                    texts.add(t);
                }
            }
            for (int from = 0; from < texts.size(); from += options.maxBatchRows()) {
                int to = Math.min(texts.size(), from + options.maxBatchRows());
                try {
                    List<Classification> out = classifyRows(owners.subList(from, to), texts.subList(from, to));
                    for (int i = from; i < to; i++) answers.get(owners.get(i)).add(out.get(i - from));
                } catch (RuntimeException e) {
                    for (int i = from; i < to; i++) owners.get(i).answer().completeExceptionally(e);
                }
            }
        }
        answers.forEach((c, out) -> {
            if (out.size() == c.texts().size()) c.answer().complete(out);
            c.lease().close();
        });
    }

    private List<Classification> classifyRows(List<Classify> owners, List<String> texts) {
        List<SoftPrompt> prompts = new ArrayList<>();
        List<long[]> ids = new ArrayList<>();
        List<LabelWords> words = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            ServedBank.Task task = owners.get(i).lease().task;
            prompts.add(task.prompt);
            ids.add(task.encoder.ids(texts.get(i)));
            words.add(task.encoder.words());
        }
        List<Prediction> predictions = new Classifier(model).predict(prompts.getFirst() == null ? null : prompts, ids, words);
        recordForward(owners.stream().map(c -> c.lease().name()).toList(), "classify");
        List<Classification> out = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            Prediction p = predictions.get(i);
            out.add(new Classification(p, words.get(i).verbalizer().labels().get(p.labelName()).getFirst(), ids.get(i).length));
        }
        return out;
    }

    /**
     * Newcomers in one forward per prompt shape; their first tokens picked, then joined to the
     * batch. Once prefilled, a prefix and virtual tokens are both just cached positions, so rows of
     * every type decode together.
     */
    private void prefill(DecodeBatch batch, List<DecodeRow> newcomers) {
        Map<SoftPrompt.Shape, List<DecodeRow>> groups = new LinkedHashMap<>();
        for (DecodeRow r : newcomers) groups.computeIfAbsent(r.lease.shape(), k -> new ArrayList<>()).add(r);
        for (List<DecodeRow> group : groups.values()) {
            List<long[]> ids = group.stream().map(r -> r.request.promptIds()).toList();
            KvCache cache = new KvCache(model.config().numLayers());
            Tensor mask;
            recordForward(group.stream().map(r -> r.lease.name()).toList(), "prefill");
            try (PointerScope scope = new PointerScope(); LeftPadded padded = LeftPadded.of(ids, model.config().padTokenId())) {
                CausalLmInput input = group.getFirst().lease.task.prompt == null
                        ? CausalLmInput.ids(padded.inputIds()).mask(padded.attentionMask())
                        : PromptedInput.of(model, group.stream().map(r -> r.lease.task.prompt).toList(), padded.inputIds(), padded.attentionMask(), null);
                DecodeRow.pickNext(model, input, cache, group);
                mask = Tensors.escape(input.attentionMask().to(ScalarType.Long).contiguous());
            } catch (RuntimeException e) {
                cache.close();
                throw e;
            }
            group.forEach(BatchScheduler::release);   // the prompts are in the cache now
            batch.join(group, cache, mask);
            cache.close();
        }
        batch.removeFinished();
    }

    private void decode(DecodeBatch batch) {
        long now = System.nanoTime();
        for (DecodeRow r : batch.rows()) {
            if (r.cancelled.get()) r.drop();
            else if (now > r.deadline) r.fail(new RequestTimeoutException(options.timeout()));
        }
        batch.removeFinished();
        if (batch.size() == 0) return;
        recordForward(batch.rows().stream().map(r -> r.lease.name()).toList(), "decode");
        batch.step();
        metrics.count("bloomtune_decode_tokens_total", "tokens produced by decode steps (first tokens come from prefill)", batch.size());
        batch.removeFinished();
    }

    private void recordForward(List<String> tasks, String kind) {
        Set<String> distinct = new HashSet<>(tasks);
        metrics.observe("bloomtune_batch_rows", "rows per forward pass", ROWS_BUCKETS, tasks.size(), "kind", kind);
        metrics.observe("bloomtune_batch_tasks", "distinct tasks per forward pass", TASKS_BUCKETS, distinct.size(), "kind", kind);
        if (distinct.size() > 1) metrics.count("bloomtune_mixed_batches_total", "forward passes holding more than one task");
    }

    /** The request's prompt, virtual tokens and new tokens do not fit the context. */
    public static final class ContextLengthException extends IllegalArgumentException {
        ContextLengthException(int context, int virtual, int prompt, int maxNew) {
            super("this model's context is " + context + " tokens; the request needs " + (virtual + prompt + maxNew) + " (" + virtual
                    + " virtual tokens, " + prompt + " in the prompt, " + maxNew + " new): shorten the prompt or lower max_tokens");
        }
    }

    /** The task generates; it has no verbalizer to classify with. */
    public static final class NotAClassifierException extends IllegalArgumentException {
        NotAClassifierException(String task) {
            super("'" + task + "' has no verbalizer: it generates, it does not classify");
        }
    }

    /** The scheduler is stopping and takes no more requests. */
    public static final class ShuttingDownException extends IllegalStateException {
        public ShuttingDownException() { super("the server is shutting down"); }
    }
}
