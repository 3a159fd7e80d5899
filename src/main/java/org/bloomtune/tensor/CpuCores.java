package org.bloomtune.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * How many cores this process may compute on, as the operating system counts them: the distinct
 * (package, die, core) of the CPUs in its affinity mask ({@code /proc/self/status},
 * {@code /sys/devices/system/cpu}), at most {@link Runtime#availableProcessors()} (which also
 * honours container quotas). Hyperthreads of one core count once, as libtorch intends; elsewhere
 * than Linux, {@code availableProcessors()}.
 */
final class CpuCores {
    private CpuCores() {}

    /** The cores of this machine and process. */
    static int usable() {
        return usable(Path.of("/"), Runtime.getRuntime().availableProcessors());
    }

    /** The same, reading {@code proc/self/status} and {@code sys/devices/system/cpu} under {@code root}. */
    static int usable(Path root, int available) {
        try {
            Set<String> cores = new HashSet<>();
            for (int cpu : allowedCpus(Files.readAllLines(root.resolve("proc/self/status")))) {
                Path topology = root.resolve("sys/devices/system/cpu/cpu" + cpu + "/topology");
                String die = Files.exists(topology.resolve("die_id")) ? Files.readString(topology.resolve("die_id")).trim() : "0";
                cores.add(Files.readString(topology.resolve("physical_package_id")).trim() + "/" + die + "/"
                        + Files.readString(topology.resolve("core_id")).trim());
            }
            return cores.isEmpty() ? available : Math.min(available, cores.size());
        } catch (IOException | RuntimeException e) {
            return available;   // not Linux, or no topology to read: every processor Java sees
        }
    }

    /** The CPUs of {@code Cpus_allowed_list} ("0-3,8,10-11"). */
    static List<Integer> allowedCpus(List<String> status) {
        for (String line : status) {
            if (!line.startsWith("Cpus_allowed_list:")) continue;
            List<Integer> cpus = new java.util.ArrayList<>();
            for (String range : line.substring(line.indexOf(':') + 1).trim().split(",")) {
                String[] ends = range.trim().split("-");
                int first = Integer.parseInt(ends[0]);
                int last = ends.length == 2 ? Integer.parseInt(ends[1]) : first;
                for (int c = first; c <= last; c++) cpus.add(c);
            }
            return cpus;
        }
        throw new IllegalArgumentException("no Cpus_allowed_list");
    }
}
