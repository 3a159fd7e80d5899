package org.bloomtune.cli;

import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The library names settings as fields ({@code batch_size must be at least 1}); the CLI user typed
 * a flag. This puts the flag in front: {@code --batch-size: batch_size must be at least 1}.
 */
final class Flags {
    private static final Pattern FIELD = Pattern.compile("^([a-z][a-z0-9]*(?:_[a-z0-9]+)*) ");

    private Flags() {}

    /** Runs {@code build}; a validation message that starts with a field name gets that field's flag prefixed. */
    static <T> T named(Supplier<T> build) {
        try {
            return build.get();
        } catch (IllegalArgumentException e) {
            Matcher m = FIELD.matcher(e.getMessage() == null ? "" : e.getMessage());
            if (!m.find()) throw e;
            throw new IllegalArgumentException("--" + m.group(1).replace('_', '-') + ": " + e.getMessage(), e);
        }
    }
}
