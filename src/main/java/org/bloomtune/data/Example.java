package org.bloomtune.data;

/**
 * A tokenized training example: ids and labels of equal length, -100 where no loss is taken. A
 * packed example ({@link Packing}) holds several records one after another; {@code recordStarts}
 * says where each begins ({0} for one record).
 */
public record Example(long[] ids, long[] labels, int[] recordStarts) {

    private static final int[] ONE_RECORD = {0};

    public Example {
        if (ids.length != labels.length) throw new IllegalArgumentException(ids.length + " ids but " + labels.length + " labels");
        if (recordStarts.length == 0 || recordStarts[0] != 0) throw new IllegalArgumentException("the first record must start at 0");
        for (int r = 1; r < recordStarts.length; r++) {
            if (recordStarts[r] <= recordStarts[r - 1] || recordStarts[r] >= ids.length) {
                throw new IllegalArgumentException("record starts must increase within the example: " + java.util.Arrays.toString(recordStarts));
            }
        }
    }

    /** One record. */
    public Example(long[] ids, long[] labels) { this(ids, labels, ONE_RECORD); }

    public int length() { return ids.length; }

    public int records() { return recordStarts.length; }

    public boolean packed() { return recordStarts.length > 1; }
}
