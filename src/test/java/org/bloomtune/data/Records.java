package org.bloomtune.data;

import org.bloomtune.model.CausalLmLoss;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Random tokenized records for tests, shaped as the seed's response-only examples. */
public final class Records {
    private Records() {}

    /** Records of the given lengths with random ids in [3, vocab); the first {@code promptTokens} carry no loss. */
    public static List<Example> responseOnly(long vocab, int promptTokens, long seed, int... lengths) {
        Random random = new Random(seed);
        List<Example> out = new ArrayList<>();
        for (int length : lengths) {
            long[] ids = new long[length];
            long[] labels = new long[length];
            for (int t = 0; t < length; t++) {
                ids[t] = 3 + random.nextInt((int) vocab - 3);
                labels[t] = t < promptTokens ? CausalLmLoss.IGNORE_INDEX : ids[t];
            }
            out.add(new Example(ids, labels));
        }
        return out;
    }
}
