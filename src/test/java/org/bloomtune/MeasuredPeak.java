package org.bloomtune;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The peak a CLI run adds above its loaded model beside the estimate it was admitted on, as
 * {@code profile-step} and {@code generate --stats} print it, from the CLI run in a child JVM whose
 * Java heap is fixed and touched before the model loads (so the heap's growth is not counted).
 */
public record MeasuredPeak(long measuredMiB, long estimatedMiB, String output) {
    private static final Pattern LINE = Pattern.compile("\\+(\\d+) MiB above the loaded model; estimated \\+(\\d+) MiB");

    /** Runs the CLI with {@code args} (output to a file in {@code dir}, so a hang meets the timeout instead of a blocked read). */
    public static MeasuredPeak of(List<String> args, Path dir) throws Exception {
        List<String> command = ChildJvm.cli("-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch");
        command.addAll(args);
        Path log = Files.createTempFile(dir, "peak", ".log");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError(args.getFirst() + " did not finish in 5 minutes");
        }
        String out = Files.readString(log, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) throw new AssertionError(args.getFirst() + " exited with " + p.exitValue() + ": " + out);
        Matcher m = LINE.matcher(out);
        if (!m.find()) throw new AssertionError("no peak line in: " + out);
        return new MeasuredPeak(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), out);
    }

    /** Fails unless the estimate is at least the measured peak and at most {@code loose} × it + 64 MiB. */
    public void assertBounds(double loose, String what) {
        System.out.printf("%s: peak +%d MiB, estimated +%d MiB%n", what, measuredMiB, estimatedMiB);
        if (estimatedMiB < measuredMiB) throw new AssertionError(what + ": the estimate must bound the peak: " + output);
        if (estimatedMiB > loose * measuredMiB + 64) throw new AssertionError(what + ": the estimate is too loose to decide on: " + output);
    }
}
