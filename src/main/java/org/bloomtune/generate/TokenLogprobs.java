package org.bloomtune.generate;

import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;

/**
 * The log-probability of a chosen token under the model (log-softmax of the raw logits, before any
 * penalty, temperature or truncation, as OpenAI's {@code logprobs} reports it) and the {@code k}
 * most likely alternatives, most likely first.
 */
public record TokenLogprobs(long token, double logprob, List<Alternative> top) {
    public record Alternative(long token, double logprob) {}

    /** From one row's logits [V] and the token chosen from them. */
    public static TokenLogprobs of(float[] logits, long token, int k) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double sum = 0;
        for (float l : logits) sum += Math.exp(l - max);
        double logZ = max + Math.log(sum);
        return new TokenLogprobs(token, logits[(int) token] - logZ, top(logits, k, logZ));
    }

    private static List<Alternative> top(float[] logits, int k, double logZ) {
        if (k <= 0) return List.of();
        // A min-heap of the k best (ties to the lower id, as torch.topk on CPU tends to give).
        PriorityQueue<Integer> heap = new PriorityQueue<>(k + 1, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[a], logits[b]) : Integer.compare(b, a));
        for (int i = 0; i < logits.length; i++) {
            heap.add(i);
            if (heap.size() > k) heap.poll();
        }
        List<Alternative> out = new ArrayList<>(heap.size());
        while (!heap.isEmpty()) {
            int i = heap.poll();
            out.addFirst(new Alternative(i, logits[i] - logZ));
        }
        return List.copyOf(out);
    }
}
