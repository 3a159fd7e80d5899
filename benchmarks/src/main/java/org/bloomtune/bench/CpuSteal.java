package org.bloomtune.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The hypervisor's share of this machine's CPU time over an interval: the steal field of
 * {@code /proc/stat}'s cpu line, time the vCPUs were ready to run and not run. On the cloud VMs
 * these figures are taken on it comes in bursts (a third of a step's time at worst), so a row's
 * time is read together with it.
 */
final class CpuSteal {
    private CpuSteal() {}

    /** Stolen and total jiffies of all CPUs so far; zeros where {@code /proc/stat} cannot be read (not Linux). */
    static long[] sample() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/stat"))) {
                if (!line.startsWith("cpu ")) continue;
                String[] f = line.trim().split("\\s+");
                long total = 0;
                for (int i = 1; i < Math.min(f.length, 9); i++) total += Long.parseLong(f[i]);   // user … steal (guest time is within user)
                return new long[]{f.length > 8 ? Long.parseLong(f[8]) : 0, total};
            }
        } catch (IOException | NumberFormatException e) {
            // no figure: reported as 0
        }
        return new long[]{0, 0};
    }

    /** Percent of the CPU time between two samples that was stolen. */
    static double percent(long[] before, long[] after) {
        long total = after[1] - before[1];
        return total <= 0 ? 0 : 100.0 * (after[0] - before[0]) / total;
    }
}
