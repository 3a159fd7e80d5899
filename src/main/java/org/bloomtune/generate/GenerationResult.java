package org.bloomtune.generate;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The new tokens of each row (ending with EOS where the row stopped on it), and where the time went. */
public record GenerationResult(long[][] newTokens, GenerationStats stats) {

    public long[] row(int i) { return newTokens[i].clone(); }

    /** "12,7,99": the CLI's output format for one row. */
    public String idsLine(int i) {
        return Arrays.stream(newTokens[i]).mapToObj(Long::toString).collect(Collectors.joining(","));
    }
}
