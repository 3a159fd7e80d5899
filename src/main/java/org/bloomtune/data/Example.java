package org.bloomtune.data;

/** A tokenized training example: ids and labels of equal length, -100 where no loss is taken. */
public record Example(long[] ids, long[] labels) {
    public int length() { return ids.length; }
}
