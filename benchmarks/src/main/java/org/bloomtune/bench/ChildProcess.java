package org.bloomtune.bench;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A probe's child processes (a CLI run, the Python peer, a group of workers) waited for within a time limit, so no probe can hang. */
final class ChildProcess {
    private ChildProcess() {}

    /** Starts {@code process}, waits at most {@code minutes} for it and returns its exit code; past the limit it is killed. */
    static int run(ProcessBuilder process, long minutes, String what) throws IOException {
        return runTogether(List.of(process), minutes, what)[0];
    }

    /**
     * Starts every process (workers that need each other), waits at most {@code minutes} for all of
     * them together and returns their exit codes in order; past the limit, or if one cannot start,
     * all are killed.
     */
    static int[] runTogether(List<ProcessBuilder> processes, long minutes, String what) throws IOException {
        List<Process> started = new ArrayList<>();
        try {
            for (ProcessBuilder pb : processes) started.add(pb.start());
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(minutes);
            int[] exits = new int[started.size()];
            for (int i = 0; i < exits.length; i++) {
                if (!started.get(i).waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    throw new IllegalStateException(what + " ran past " + minutes + " minutes: " + String.join(" ", processes.get(i).command()));
                }
                exits[i] = started.get(i).exitValue();
            }
            return exits;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for " + what, e);
        } finally {
            for (Process p : started) if (p.isAlive()) p.destroyForcibly();
        }
    }
}
