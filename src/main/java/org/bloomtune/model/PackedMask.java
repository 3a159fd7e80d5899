package org.bloomtune.model;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Attention masks of packed rows: several records in one row, each attending only to itself and to
 * the tokens every record shares (virtual tokens, a prefix). The 2-D mask says which: 0 is padding,
 * 1 a shared token (the ordinary meaning, so an unpacked mask is a packed mask with no records),
 * and k ≥ 2 a token of record k. Shared tokens come first; then, for a query of record k, the keys
 * it sees are exactly those of the record alone behind the shared tokens, and ALiBi gives each key
 * the position it would have there — the row computes what each record would compute in a row of
 * its own. BLOOM has no position embeddings, so the positions live in ALiBi alone.
 */
public final class PackedMask {
    /** The first record id; lower values are padding (0) and shared tokens (1). */
    public static final long FIRST_RECORD = 2;

    private PackedMask() {}

    /** True when {@code mask} [B, S] marks records (any value ≥ 2). */
    public static boolean isPacked(Tensor mask) {
        return mask.numel() > 0 && mask.max().item_long() >= FIRST_RECORD;
    }

    /**
     * Every key's ALiBi position [B, S] (float32, on the mask's device): a shared key counts the
     * shared keys up to it, a record's key the shared keys plus its record's keys up to it; padding
     * gets 0, as in the unpacked case.
     *
     * @throws IllegalArgumentException when a shared token follows a record's token (its position
     *                                  would differ per record, which a bias on the key axis cannot say)
     *                                  or a record is not one run of increasing id
     */
    public static Tensor positions(Tensor mask) {
        int batch = Math.toIntExact(mask.size(0));
        int keys = Math.toIntExact(mask.size(1));
        long[] m = Tensors.toLongs(mask);
        float[] positions = new float[m.length];
        for (int b = 0; b < batch; b++) {
            long shared = 0;
            long record = 0;
            long counted = 0;
            for (int j = 0; j < keys; j++) {
                long v = m[b * keys + j];
                if (v == 0) continue;
                if (v == 1) {
                    if (record != 0) {
                        throw new IllegalArgumentException("attention_mask row " + b + ": a shared token (1) at " + j
                                + " follows a packed record's token; shared tokens must come first");
                    }
                    positions[b * keys + j] = shared++;
                    continue;
                }
                if (v < record) {
                    throw new IllegalArgumentException("attention_mask row " + b + ": record " + v + " at " + j
                            + " after record " + record + "; packed records must be runs in increasing order");
                }
                if (v != record) {
                    record = v;
                    counted = 0;
                }
                positions[b * keys + j] = shared + counted++;
            }
        }
        return Tensors.fromFloats(positions, batch, keys).to(mask.device(), ScalarType.Float);
    }

    /**
     * {@code [B, 1, T, S]}, true where key {@code j} belongs to another record than query {@code i}
     * (the last T positions of the mask are the queries). Shared keys are seen by every query; a
     * shared query sees no record's keys; padding is left to {@link AttentionMask#build}.
     */
    public static Tensor otherRecords(Tensor mask, long queries) {
        long batch = mask.size(0);
        long keys = mask.size(1);
        Tensor key = mask.view(batch, 1, 1, keys);
        Tensor query = mask.narrow(1, keys - queries, queries).view(batch, 1, queries, 1);
        return key.ne(new Scalar(1)).logical_and(key.ne(query));
    }
}
