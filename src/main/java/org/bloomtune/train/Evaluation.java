package org.bloomtune.train;

import java.util.Map;

/**
 * One evaluation of a prompt: the loss, further metrics by the name they get in metrics.jsonl
 * ({@code eval_ppl}, {@code eval_accuracy}, …), and a human-readable report for the console.
 */
public record Evaluation(double loss, Map<String, Double> metrics, String report) {
    public Evaluation {
        metrics = Map.copyOf(metrics);
    }
}
