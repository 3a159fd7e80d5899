package org.bloomtune.bench;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/** A probe's child process (a CLI run, the Python peer) waited for within a time limit, so no probe can hang. */
final class ChildProcess {
    private ChildProcess() {}

    /** Starts {@code process}, waits at most {@code minutes} for it and returns its exit code; past the limit it is killed. */
    static int run(ProcessBuilder process, long minutes, String what) throws IOException {
        Process p = process.start();
        try {
            if (!p.waitFor(minutes, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IllegalStateException(what + " ran past " + minutes + " minutes: " + String.join(" ", process.command()));
            }
            return p.exitValue();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for " + what, e);
        }
    }
}
