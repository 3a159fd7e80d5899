package org.bloomtune.model;

/** The first rows of some prompts left-padded to one width, as ids and a 0/1 mask, and the mask grown by a step. */
record LeftPaddedPrompts(long[] ids, long[] mask, int width) {

    static LeftPaddedPrompts of(long[][] prompts, int rows) {
        int width = 0;
        for (int r = 0; r < rows; r++) width = Math.max(width, prompts[r].length);
        long[] ids = new long[rows * width];
        long[] mask = new long[rows * width];
        for (int r = 0; r < rows; r++) {
            int pad = width - prompts[r].length;
            for (int t = 0; t < prompts[r].length; t++) {
                ids[r * width + pad + t] = prompts[r][t];
                mask[r * width + pad + t] = 1;
            }
        }
        return new LeftPaddedPrompts(ids, mask, width);
    }

    /** {@code mask} [rows, keys − 1] with a column of ones after it: [rows, keys]. */
    static long[] grown(long[] mask, int rows, int keys) {
        long[] m = new long[rows * keys];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(mask, r * (keys - 1), m, r * keys, keys - 1);
            m[r * keys + keys - 1] = 1;
        }
        return m;
    }
}
