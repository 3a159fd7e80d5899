package org.bloomtune.train;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * SHA-256 over what the training data feeds the model — each example's token ids and labels, in
 * order — so a resume can tell that the data (or the tokenizer, template or length cut that turned
 * it into tokens) is the same as when the checkpoint was written.
 */
public final class DataFingerprint {
    private final MessageDigest sha;
    private final ByteBuffer buffer = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    private long examples;

    public DataFingerprint() {
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks SHA-256", e);
        }
    }

    /** Adds one example's values; a length marker keeps [1,2][3] apart from [1][2,3]. */
    public DataFingerprint add(long[] values) {
        add(values.length);
        for (long v : values) add(v);
        return this;
    }

    public DataFingerprint add(long value) {
        sha.update(buffer.clear().putLong(value).array());
        return this;
    }

    /** Counts one example (reported beside the hash). */
    public void nextExample() { examples++; }

    /** "N examples, sha256 HEX" */
    public String digest() {
        return examples + " examples, sha256 " + HexFormat.of().formatHex(sha.digest());
    }
}
