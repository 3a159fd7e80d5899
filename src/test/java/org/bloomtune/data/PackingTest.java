package org.bloomtune.data;

import org.bloomtune.model.PackedMask;
import org.bloomtune.tensor.Tensors;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PackingTest {

    @Test
    void bestFitDecreasingByHand() {
        // 6→new row (room 4), 5→new row (5), 4→the row with room 4 (full), 3→room 5 (2), 2→room 2 (full).
        List<Example> in = List.of(example(6, 10), example(5, 20), example(4, 30), example(3, 40), example(2, 50));
        List<Example> rows = Packing.pack(in, 10);
        assertEquals(2, rows.size());
        assertArrayEquals(new int[]{0, 6}, rows.get(0).recordStarts());          // examples 0 and 2, in data order
        assertArrayEquals(new int[]{0, 5, 8}, rows.get(1).recordStarts());       // examples 1, 3 and 4
        assertArrayEquals(new long[]{10, 11, 12, 13, 14, 15, 30, 31, 32, 33}, rows.get(0).ids());
        // Labels kept, but the first of each later record: it would be predicted from the record before.
        assertArrayEquals(new long[]{10, 11, 12, 13, 14, 15, -100, 31, 32, 33}, rows.get(0).labels());
        assertArrayEquals(new long[]{20, 21, 22, 23, 24, -100, 41, 42, -100, 51}, rows.get(1).labels());
    }

    @Test
    void everyRecordOnceAndRowsWithinCapacity() {
        Random random = new Random(1);
        List<Example> in = new ArrayList<>();
        for (int i = 0; i < 500; i++) in.add(example(1 + random.nextInt(random.nextBoolean() ? 40 : 200), 1000 * i));
        int capacity = 256;
        List<Example> rows = Packing.pack(in, capacity);
        long tokens = in.stream().mapToInt(Example::length).sum();
        assertEquals(tokens, rows.stream().mapToInt(Example::length).sum());
        assertEquals(in.size(), rows.stream().mapToInt(Example::records).sum());
        assertTrue(rows.stream().allMatch(r -> r.length() <= capacity));
        List<Long> firsts = new ArrayList<>();
        for (Example r : rows) for (int s : r.recordStarts()) firsts.add(r.ids()[s]);
        assertEquals(in.stream().map(e -> e.ids()[0]).sorted().toList(), firsts.stream().sorted().toList());
        long lowerBound = (tokens + capacity - 1) / capacity;
        System.out.printf("%d records, %d tokens → %d rows of %d (lower bound %d)%n", in.size(), tokens, rows.size(), capacity, lowerBound);
        assertTrue(rows.size() <= lowerBound + 1, rows.size() + " rows, the bound is " + lowerBound);
    }

    @Test
    void collateMarksRecordsAndRefusesWhatDoesNotFit() {
        List<Example> rows = Packing.pack(List.of(example(3, 10), example(2, 20), example(4, 30)), 6);
        try (Batch b = Batch.collate(rows, 3)) {
            long[] mask = Tensors.toLongs(b.attentionMask());
            // best fit: the 4 opens a row, the 3 another, the 2 joins the 4 (records in data order): [2 | 4] and [3] padded to 6
            assertArrayEquals(new long[]{PackedMask.FIRST_RECORD, 2, 3, 3, 3, 3, 1, 1, 1, 0, 0, 0}, mask);
        }
        var e = assertThrows(IllegalArgumentException.class, () -> Packing.pack(List.of(example(7, 0)), 6));
        assertEquals("example 0 has 7 tokens, more than a row's 6", e.getMessage());
    }

    @Test
    void withinBatchPacksOnlyWhereNoLossTermChanges() {
        // Response-only labels (first label ignored): 9 | 5 + 2 + 2 within the longest (9), not 4 rows.
        List<Example> batch = List.of(responseOnly(example(5, 10)), responseOnly(example(9, 20)),
                responseOnly(example(2, 30)), responseOnly(example(2, 40)));
        List<Example> rows = Packing.withinBatch(batch);
        assertEquals(2, rows.size());
        assertTrue(rows.stream().allMatch(r -> r.length() <= 9), "no row wider than the padded batch");
        assertEquals(batch.stream().mapToInt(Example::length).sum(), rows.stream().mapToInt(Example::length).sum());
        assertEquals(4, rows.stream().mapToInt(Example::records).sum());
        for (Example row : rows) {                       // every label as the record had it: none was dropped
            long[] expected = new long[row.length()];
            for (int r = 0; r < row.records(); r++) {
                int start = row.recordStarts()[r];
                Example record = batch.stream().filter(e -> e.ids()[0] == row.ids()[start]).findFirst().orElseThrow();
                System.arraycopy(record.labels(), 0, expected, start, record.length());
            }
            assertArrayEquals(expected, row.labels());
        }
        // A counted first label would be lost in a packed row: the batch stays as it is.
        List<Example> labelled = List.of(example(5, 10), responseOnly(example(4, 30)));
        assertTrue(Packing.withinBatch(labelled) == labelled);
        // Nothing fits beside the longest: as it is, in its order.
        List<Example> even = List.of(responseOnly(example(5, 10)), responseOnly(example(5, 20)));
        assertTrue(Packing.withinBatch(even) == even);
        List<Example> packed = List.of(Packing.pack(List.of(responseOnly(example(2, 10)), responseOnly(example(2, 20))), 4).getFirst(),
                responseOnly(example(1, 30)));
        assertTrue(Packing.withinBatch(packed) == packed, "packed examples are not packed again");
    }

    private static Example responseOnly(Example e) {
        long[] labels = e.labels().clone();
        labels[0] = -100;
        return new Example(e.ids(), labels);
    }

    private static Example example(int length, long first) {
        long[] ids = new long[length];
        for (int i = 0; i < length; i++) ids[i] = first + i;
        return new Example(ids, ids.clone());
    }
}
