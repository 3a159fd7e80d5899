package org.bloomtune.data;

import org.bloomtune.model.CausalLmLoss;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.IntStream;

/**
 * Packs short examples into rows of at most {@code capacity} tokens, so a batch carries fewer pad
 * tokens: best fit decreasing (longest first, each into the fullest row it still fits), which is
 * deterministic and leaves few rows part-empty. Each record keeps its ids and labels, except the
 * first label of every record after a row's first: that token would be predicted from the previous
 * record, so it is ignored (as transformers' {@code DataCollatorWithFlattening} does). With the
 * loss on the response only it is a prompt token and was ignored anyway; then a packed row's loss
 * terms are exactly its records' own.
 */
public final class Packing {
    private Packing() {}

    public static List<Example> pack(List<Example> examples, int capacity) {
        for (int i = 0; i < examples.size(); i++) {
            if (examples.get(i).packed()) throw new IllegalArgumentException("example " + i + " is packed already");
            if (examples.get(i).length() > capacity) {
                throw new IllegalArgumentException("example " + i + " has " + examples.get(i).length() + " tokens, more than a row's " + capacity);
            }
        }
        List<List<Integer>> rows = new ArrayList<>();
        TreeMap<Integer, TreeSet<Integer>> openByRoom = new TreeMap<>();   // room left → rows with that much room
        IntStream.range(0, examples.size()).boxed()
                .sorted(Comparator.comparingInt((Integer i) -> -examples.get(i).length()).thenComparingInt(i -> i))
                .forEach(i -> place(i, examples.get(i).length(), capacity, rows, openByRoom));
        List<Example> packed = new ArrayList<>(rows.size());
        for (List<Integer> row : rows) packed.add(concat(row.stream().sorted().map(examples::get).toList()));
        return packed;
    }

    /**
     * A micro-batch's examples in as few rows as fit within its longest example, when that changes
     * no loss term: every example is one record whose first label is ignored (the response-only
     * loss always ignores it), so the label a later record loses in a packed row was not counted
     * anyway. The rows are never wider than the padded batch's, so the step computes fewer
     * positions and the same loss; otherwise, or when no two examples fit in one row, the batch as
     * given.
     */
    public static List<Example> withinBatch(List<Example> batch) {
        if (batch.size() < 2) return batch;
        for (Example e : batch) {
            if (e.packed() || e.length() == 0 || e.labels()[0] != CausalLmLoss.IGNORE_INDEX) return batch;
        }
        List<Example> rows = pack(batch, batch.stream().mapToInt(Example::length).max().orElseThrow());
        return rows.size() < batch.size() ? rows : batch;
    }

    private static void place(int example, int length, int capacity, List<List<Integer>> rows, TreeMap<Integer, TreeSet<Integer>> openByRoom) {
        var fit = openByRoom.ceilingEntry(length);
        int row;
        int room;
        if (fit == null) {
            row = rows.size();
            rows.add(new ArrayList<>());
            room = capacity;
        } else {
            row = fit.getValue().pollFirst();
            room = fit.getKey();
            if (fit.getValue().isEmpty()) openByRoom.remove(room);
        }
        rows.get(row).add(example);
        if (room > length) openByRoom.computeIfAbsent(room - length, k -> new TreeSet<>()).add(row);
    }

    private static Example concat(List<Example> records) {
        if (records.size() == 1) return records.getFirst();
        int length = records.stream().mapToInt(Example::length).sum();
        long[] ids = new long[length];
        long[] labels = new long[length];
        int[] starts = new int[records.size()];
        int at = 0;
        for (int r = 0; r < records.size(); r++) {
            Example e = records.get(r);
            starts[r] = at;
            System.arraycopy(e.ids(), 0, ids, at, e.length());
            System.arraycopy(e.labels(), 0, labels, at, e.length());
            if (r > 0) labels[at] = CausalLmLoss.IGNORE_INDEX;
            at += e.length();
        }
        return new Example(ids, labels, starts);
    }
}
