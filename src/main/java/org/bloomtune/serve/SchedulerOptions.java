package org.bloomtune.serve;

import java.time.Duration;

/**
 * Limits of a {@link BatchScheduler}.
 *
 * @param maxBatchRows  rows decoded together at most (and texts classified in one forward)
 * @param maxQueued     requests waiting to start at most; more are refused ({@link QueueFullException})
 * @param timeout       a request not finished this long after it was submitted fails
 * @param contextLength prompt (with virtual tokens) plus new tokens may not exceed this
 */
public record SchedulerOptions(int maxBatchRows, int maxQueued, Duration timeout, int contextLength) {
    public SchedulerOptions {
        if (maxBatchRows < 1) throw new IllegalArgumentException("the batch must hold at least one row, got " + maxBatchRows);
        if (maxQueued < 1) throw new IllegalArgumentException("the queue must hold at least one request, got " + maxQueued);
        if (timeout == null || timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("the request timeout must be positive");
        if (contextLength < 2) throw new IllegalArgumentException("the context length must be at least 2, got " + contextLength);
    }

    public static SchedulerOptions defaults() { return new SchedulerOptions(16, 256, Duration.ofMinutes(5), 2048); }
}
