package org.bloomtune.serve;

import org.bloomtune.demo.DemoBank;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bloomtune_active_rows} as a client sees it: read on the scheduler's thread at the moment a
 * row's output is handed over, the gauge counts that row while its tokens come and no longer counts
 * it when its end is reported — a client that has its whole answer never reads a stale count.
 */
class ActiveRowsTest {
    static final Path MODEL = Path.of("models/bloom-tiny");
    static final Pattern GAUGE = Pattern.compile("(?m)^bloomtune_active_rows (\\d+)$");

    @TempDir
    Path dir;

    /** The gauge's value at each event of one row. */
    static final class Recorder implements GenerationSink {
        final ServerMetrics metrics;
        final List<Long> atText = new CopyOnWriteArrayList<>();
        final CompletableFuture<Long> atEnd = new CompletableFuture<>();

        Recorder(ServerMetrics metrics) { this.metrics = metrics; }

        @Override
        public void onText(String text, List<TokenLogprobs> logprobs) { atText.add(active(metrics)); }

        @Override
        public void onFinish(FinishReason reason, int promptTokens, int completionTokens) { atEnd.complete(active(metrics)); }

        @Override
        public void onError(RuntimeException error) { atEnd.completeExceptionally(error); }
    }

    static long active(ServerMetrics metrics) {
        Matcher m = GAUGE.matcher(metrics.render());
        assertTrue(m.find(), "the gauge is rendered");
        return Long.parseLong(m.group(1));
    }

    @Test
    void theGaugeCountsARowFromItsFirstTokenUntilItsEndIsReported() throws Exception {
        BloomModel model = BloomModel.load(MODEL);
        Tokenizer tokenizer = Tokenizer.load(MODEL.resolve("tokenizer.json"));
        ServedBank bank = new ServedBank(model, tokenizer, PromptBank.load(DemoBank.write(model, tokenizer, dir.resolve("bank")), model.config()),
                "bloom-tiny", 256);
        ServerMetrics metrics = new ServerMetrics();
        long[] prompt = tokenizer.encode("春天来了");
        try (BatchScheduler scheduler = new BatchScheduler(model, tokenizer, bank, new SchedulerOptions(4, 8, Duration.ofMinutes(1), 2048), metrics)) {
            Recorder alone = new Recorder(metrics);
            scheduler.submit(request("poem", prompt, 6), alone);
            assertEquals(0L, alone.atEnd.get(60, TimeUnit.SECONDS), "a finished row is not counted when its client hears it finished");
            assertEquals(List.of(1L), alone.atText.stream().distinct().toList(), "a row is counted while its tokens come, from the first");

            // Two rows together: the short one ends first while the long one still runs.
            Recorder shorter = new Recorder(metrics);
            Recorder longer = new Recorder(metrics);
            scheduler.submit(request("chat", prompt, 40), longer);
            scheduler.submit(request("poem", prompt, 3), shorter);
            long shortEnd = shorter.atEnd.get(60, TimeUnit.SECONDS);
            assertEquals(0L, longer.atEnd.get(60, TimeUnit.SECONDS));
            assertEquals(1L, shortEnd, "the other row is still running when the short one ends");
            assertTrue(longer.atText.stream().allMatch(n -> n >= 1 && n <= 2), "counts while both run: " + longer.atText);

            // A row whose client left: dropped at the next step, and the gauge comes down.
            Recorder left = new Recorder(metrics);
            BatchScheduler.Submission gone = scheduler.submit(request("chat", prompt, 1500), left);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (left.atText.isEmpty() && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(1L, left.atText.getFirst());
            gone.cancel();
            while (active(metrics) != 0 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(0L, active(metrics), "a cancelled row is no longer counted");
            assertTrue(!left.atEnd.isDone(), "a dropped row reports nothing more");
        }
    }

    private static GenerationRequest request(String task, long[] prompt, int maxNew) {
        return new GenerationRequest(task, prompt, GenerationConfig.greedy(maxNew, -1), List.of(), -1);
    }
}
