package org.bloomtune.cli;

import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The library names settings as fields ({@code batch_size must be at least 1}); the CLI user typed
 * a flag. This puts the flag in front: {@code --batch-size: batch_size must be at least 1}.
 */
final class Flags {
    private static final Pattern FIELD = Pattern.compile("^([a-z][a-z0-9_]*) ");
    private static final Map<String, String> FLAG = Map.ofEntries(
            Map.entry("epochs", "--epochs"), Map.entry("max_steps", "--max-steps"), Map.entry("batch_size", "--batch-size"),
            Map.entry("grad_accumulation", "--grad-accumulation"), Map.entry("lr", "--lr"), Map.entry("schedule", "--schedule"),
            Map.entry("warmup_ratio", "--warmup-ratio"), Map.entry("weight_decay", "--weight-decay"),
            Map.entry("max_grad_norm", "--max-grad-norm"), Map.entry("checkpoint_every", "--checkpoint-every"),
            Map.entry("eval_every", "--eval-every"), Map.entry("reverse_pass", "--reverse-pass"),
            Map.entry("num_virtual_tokens", "--virtual-tokens"), Map.entry("max_length", "--max-length"),
            Map.entry("eval_split", "--eval-split"), Map.entry("device", "--device"));

    private Flags() {}

    /** {@code value} when it is at least {@code min}; else an error naming {@code flag}. */
    static int atLeast(int min, int value, String flag) {
        if (value < min) throw new IllegalArgumentException(flag + " must be at least " + min + ", got " + value);
        return value;
    }

    /** "2GB" (10^9, as transformers' max_shard_size), "500MB", "10GiB" (2^30), or bytes; positive. */
    static long size(String text, String flag) {
        Matcher m = Pattern.compile("(?i)\\s*(\\d+(?:\\.\\d+)?)\\s*(b|kb|mb|gb|kib|mib|gib)?\\s*").matcher(text);
        if (!m.matches()) throw new IllegalArgumentException(flag + ": '" + text + "' is not a size like 2GB, 500MB or 10GiB");
        double factor = switch (m.group(2) == null ? "b" : m.group(2).toLowerCase(java.util.Locale.ROOT)) {
            case "kb" -> 1e3;
            case "mb" -> 1e6;
            case "gb" -> 1e9;
            case "kib" -> 1024.0;
            case "mib" -> 1024.0 * 1024;
            case "gib" -> 1024.0 * 1024 * 1024;
            default -> 1;
        };
        long bytes = (long) (Double.parseDouble(m.group(1)) * factor);
        if (bytes < 1) throw new IllegalArgumentException(flag + " must be positive, got " + text);
        return bytes;
    }

    /** Runs {@code build}; a validation message that starts with a known field gets its flag prefixed. */
    static <T> T named(Supplier<T> build) {
        try {
            return build.get();
        } catch (IllegalArgumentException e) {
            Matcher m = FIELD.matcher(e.getMessage() == null ? "" : e.getMessage());
            if (!m.find() || !FLAG.containsKey(m.group(1))) throw e;
            throw new IllegalArgumentException(FLAG.get(m.group(1)) + ": " + e.getMessage(), e);
        }
    }
}
