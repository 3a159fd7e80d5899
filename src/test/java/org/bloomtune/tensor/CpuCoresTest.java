package org.bloomtune.tensor;

import org.bloomtune.ChildJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cores libtorch is told to compute on: counted from a written sysfs for the cases a machine
 * can present, and for this machine compared with util-linux's {@code lscpu} and with what a fresh
 * CLI process's libtorch reports.
 */
class CpuCoresTest {
    @TempDir
    Path root;

    /** Writes {@code cores[i]} as CPU i's core id (package 0) and the affinity list. */
    private Path machine(String allowed, int... cores) throws IOException {
        Files.createDirectories(root.resolve("proc/self"));
        Files.writeString(root.resolve("proc/self/status"), "Name:\tjava\nCpus_allowed:\tff\nCpus_allowed_list:\t" + allowed + "\nVoluntary:\t1\n");
        for (int cpu = 0; cpu < cores.length; cpu++) {
            Path topology = Files.createDirectories(root.resolve("sys/devices/system/cpu/cpu" + cpu + "/topology"));
            Files.writeString(topology.resolve("physical_package_id"), "0\n");
            Files.writeString(topology.resolve("core_id"), cores[cpu] + "\n");
        }
        return root;
    }

    @Test
    void hyperthreadsOfOneCoreCountOnceAndTheAffinityMaskAndQuotaLimit() throws IOException {
        assertEquals(2, CpuCores.usable(machine("0-1", 0, 1), 2), "two cores");
        assertEquals(2, CpuCores.usable(machine("0-3", 0, 0, 1, 1), 4), "two cores of two threads each");
        assertEquals(2, CpuCores.usable(machine("0,2", 0, 1, 2, 3), 2), "two of four cores in the affinity mask");
        assertEquals(3, CpuCores.usable(machine("0-7", 0, 1, 2, 3, 4, 5, 6, 7), 3), "a container quota of three processors");
        assertEquals(List.of(0, 1, 2, 3, 8, 10, 11), CpuCores.allowedCpus(List.of("Cpus_allowed_list:\t0-3,8,10-11")));
    }

    @Test
    void withoutATopologyEveryProcessorJavaSeesCounts() {
        assertEquals(5, CpuCores.usable(root.resolve("nothing-here"), 5));
    }

    @Test
    void thisMachineAgreesWithLscpuAndAFreshProcessComputesOnThatMany() throws Exception {
        int usable = CpuCores.usable();
        assertTrue(usable >= 1 && usable <= Runtime.getRuntime().availableProcessors());
        if (Files.isReadable(Path.of("/proc/self/status")) && Files.isExecutable(Path.of("/usr/bin/lscpu"))
                && CpuCores.allowedCpus(Files.readAllLines(Path.of("/proc/self/status"))).size() == Runtime.getRuntime().availableProcessors()) {
            Process lscpu = new ProcessBuilder("/usr/bin/lscpu", "-p=SOCKET,CORE").redirectErrorStream(true).start();
            List<String> lines = new String(lscpu.getInputStream().readAllBytes()).lines().filter(l -> !l.startsWith("#")).distinct().toList();
            assertTrue(lscpu.waitFor(30, TimeUnit.SECONDS));
            assertEquals(lines.size(), usable, "lscpu's distinct (socket, core) pairs: " + lines);
        }
        List<String> command = ChildJvm.cli();
        command.add("--version");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().remove("OMP_NUM_THREADS");
        pb.environment().remove("MKL_NUM_THREADS");
        Process cli = pb.start();
        String out = new String(cli.getInputStream().readAllBytes());
        assertTrue(cli.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, cli.exitValue(), out);
        assertTrue(out.contains("compute threads: " + usable + "\n"), out);
        pb.environment().put("OMP_NUM_THREADS", "1");
        Process one = pb.start();
        String told = new String(one.getInputStream().readAllBytes());
        assertTrue(one.waitFor(60, TimeUnit.SECONDS));
        assertTrue(told.contains("compute threads: 1\n"), "the user's OMP_NUM_THREADS is kept: " + told);
    }
}
