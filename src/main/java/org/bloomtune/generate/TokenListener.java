package org.bloomtune.generate;

/** Receives each new token as soon as it is chosen (streaming), and may end a row early. */
@FunctionalInterface
public interface TokenListener {
    TokenListener NONE = (row, token) -> {};

    /** {@code row} of the batch just produced {@code token}; finished rows are not reported. */
    void onToken(int row, long token);

    /**
     * Asked after each reported token: true ends {@code row} there, as an end-of-sequence token
     * would (a stop string appeared, the client went away).
     */
    default boolean stopRow(int row) { return false; }
}
