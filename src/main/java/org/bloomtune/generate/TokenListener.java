package org.bloomtune.generate;

/** Receives each new token as soon as it is chosen (streaming). */
@FunctionalInterface
public interface TokenListener {
    TokenListener NONE = (row, token) -> {};

    /** {@code row} of the batch just produced {@code token}; finished rows are not reported. */
    void onToken(int row, long token);
}
