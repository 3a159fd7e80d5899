package org.bloomtune.data;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.function.ToIntFunction;

/**
 * Which examples form each batch in each epoch: a seeded shuffle (epoch e uses seed + e, so any
 * epoch's order can be rebuilt on resume without saved RNG state), optionally grouped by length so
 * batches waste less padding.
 */
public record BatchOrder(int batchSize, long seed, boolean groupByLength) {

    public BatchOrder {
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
    }

    public List<List<Integer>> epoch(List<Example> examples, int epoch) {
        return epoch(examples, Example::length, epoch);
    }

    /** Batches of indices into {@code examples} for {@code epoch}; {@code length} is used when grouping. */
    public <E> List<List<Integer>> epoch(List<E> examples, ToIntFunction<E> length, int epoch) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) order.add(i);
        Collections.shuffle(order, new Random(seed + epoch));
        List<List<Integer>> batches = new ArrayList<>();
        if (groupByLength) {
            // Sort within windows of 50 batches by length, then shuffle the batches themselves.
            int window = batchSize * 50;
            for (int w = 0; w < order.size(); w += window) {
                order.subList(w, Math.min(order.size(), w + window)).sort(Comparator.comparingInt(i -> length.applyAsInt(examples.get(i))));
            }
        }
        for (int i = 0; i < order.size(); i += batchSize) batches.add(List.copyOf(order.subList(i, Math.min(order.size(), i + batchSize))));
        if (groupByLength) Collections.shuffle(batches, new Random(seed + epoch + 7919));
        return batches;
    }
}
