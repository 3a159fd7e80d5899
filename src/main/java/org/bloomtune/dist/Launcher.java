package org.bloomtune.dist;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Starts the ranks of one machine as worker JVMs, as {@code torchrun --nproc-per-node} does: each
 * gets torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and its
 * share of the cores (OMP_NUM_THREADS, read by libtorch when it loads). Rank 0 of the machine
 * prints to this process's stdout; every rank's stderr comes through prefixed with its rank. When
 * a worker fails, the others get the collective timeout to notice and stop, then are stopped.
 */
public final class Launcher {
    /** How to start one worker: the program (java, its options, the main class) and its arguments. */
    public record Plan(List<String> command, int nodeRank, int nprocPerNode, int nnodes, String masterAddr, int masterPort,
                       int threads, Duration timeout) {}

    /** Set in each worker's environment (to this launcher's pid): the launcher passes its signals on to the ranks. */
    public static final String LAUNCHER_ENV = "BLOOMTUNE_LAUNCHER";

    /** How far a stop has gone: none, the ranks asked to stop after their current step (SIGTERM), or ended at once. */
    public enum Stop { NONE, AFTER_STEP, AT_ONCE }

    private Launcher() {}

    /** The command that starts this JVM's main class again with {@code args}: same java, class path and JVM options. */
    public static List<String> thisJvm(String mainClass, List<String> args) {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse("java"));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!a.startsWith("-agentlib") && !a.startsWith("-javaagent") && !a.startsWith("-Djava.class.path")) command.add(a);
        }
        if (command.stream().noneMatch(a -> a.startsWith("--enable-native-access"))) command.add("--enable-native-access=ALL-UNNAMED");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(mainClass);
        command.addAll(args);
        return command;
    }

    /** Runs the workers to the end and returns the exit code: 0, or the first failing worker's. */
    public static int run(Plan plan, PrintStream out, PrintStream err) throws IOException, InterruptedException {
        return run(plan, out, err, () -> Stop.NONE);
    }

    /**
     * As {@link #run(Plan, PrintStream, PrintStream)}, and stopped as {@code stop} says: the ranks get
     * SIGTERM (they agree on a step, checkpoint it and end) or are killed (the run continues from its
     * newest checkpoint).
     */
    public static int run(Plan plan, PrintStream out, PrintStream err, Supplier<Stop> stop) throws IOException, InterruptedException {
        int world = plan.nnodes() * plan.nprocPerNode();
        List<Process> workers = new ArrayList<>();
        List<Thread> pumps = new ArrayList<>();
        Thread stopper = new Thread(() -> workers.forEach(Process::destroyForcibly));
        Runtime.getRuntime().addShutdownHook(stopper);
        try {
            for (int local = 0; local < plan.nprocPerNode(); local++) {
                int rank = plan.nodeRank() * plan.nprocPerNode() + local;
                ProcessBuilder pb = new ProcessBuilder(plan.command());
                Map<String, String> env = pb.environment();
                env.put("RANK", Integer.toString(rank));
                env.put("WORLD_SIZE", Integer.toString(world));
                env.put("LOCAL_RANK", Integer.toString(local));
                env.put("MASTER_ADDR", plan.masterAddr());
                env.put("MASTER_PORT", Integer.toString(plan.masterPort()));
                env.put("OMP_NUM_THREADS", Integer.toString(plan.threads()));
                env.put(LAUNCHER_ENV, Long.toString(ProcessHandle.current().pid()));
                Process p = pb.start();
                workers.add(p);
                pumps.add(pump(p.getInputStream(), local == 0 ? out : null, ""));
                pumps.add(pump(p.getErrorStream(), err, "[rank " + rank + "] "));
            }
            int code = await(plan, workers, err, stop);
            for (Thread pump : pumps) pump.join(5000);          // the ranks' last lines, before this process ends
            return code;
        } finally {
            workers.forEach(Process::destroyForcibly);
            try {
                Runtime.getRuntime().removeShutdownHook(stopper);
            } catch (IllegalStateException e) {
                // already shutting down
            }
        }
    }

    private static int await(Plan plan, List<Process> workers, PrintStream err, Supplier<Stop> stop) throws InterruptedException {
        int code = 0;
        long deadline = Long.MAX_VALUE;
        Stop handled = Stop.NONE;
        while (workers.stream().anyMatch(Process::isAlive) && System.nanoTime() < deadline) {
            Stop asked = stop.get();
            if (asked != handled) {
                handled = asked;
                passOn(asked, workers, err);
            }
            boolean stopping = handled != Stop.NONE;
            for (int local = 0; !stopping && local < workers.size(); local++) {
                Process p = workers.get(local);
                if (p.isAlive() || code != 0 || p.exitValue() == 0) continue;
                code = runCode(p.exitValue());
                report(plan, local, p.exitValue(), err);
                deadline = System.nanoTime() + plan.timeout().toNanos() + TimeUnit.SECONDS.toNanos(10);
            }
            Thread.sleep(100);
        }
        for (int local = 0; local < workers.size(); local++) {
            Process p = workers.get(local);
            if (p.isAlive()) {
                p.destroyForcibly().waitFor();
                err.println("bloomtune train: rank " + (plan.nodeRank() * plan.nprocPerNode() + local) + " was stopped: it did not end on its own");
            }
            if (code == 0 && p.exitValue() != 0) {
                code = runCode(p.exitValue());
                if (handled == Stop.NONE) report(plan, local, p.exitValue(), err);
            }
        }
        return code;
    }

    /** The first rank to end with a non-zero code, and what follows for the others. */
    private static void report(Plan plan, int local, int exit, PrintStream err) {
        int rank = plan.nodeRank() * plan.nprocPerNode() + local;
        err.println("bloomtune train: rank " + rank + (STOPPED.contains(exit)
                ? " stopped on request (exit " + exit + "); the other ranks stop after the same step"
                : " " + describe(exit) + "; the other ranks get " + plan.timeout().toSeconds() + " s to notice and stop"));
    }

    /** A rank's exit after a stop on request (SIGHUP, SIGINT, SIGTERM: 128 + the signal), any rank's, as train exits then. */
    private static final Set<Integer> STOPPED = Set.of(129, 130, 143);

    /** The run's exit code for a rank's: a stop's code stands, bad input stays 2, any other failure is 1. */
    private static int runCode(int rankExit) {
        return STOPPED.contains(rankExit) || rankExit == 2 ? rankExit : 1;
    }

    private static void passOn(Stop stop, List<Process> workers, PrintStream err) {
        if (stop == Stop.AFTER_STEP) {
            err.println("bloomtune train: asking the ranks to stop after their current step");
            // Through the handle: Process.destroy also closes the pipes, and the ranks' last lines would be lost.
            workers.forEach(w -> w.toHandle().destroy());
        } else if (stop == Stop.AT_ONCE) {
            err.println("bloomtune train: ending the ranks; the run continues from its newest checkpoint with --resume");
            workers.forEach(Process::destroyForcibly);
        }
    }

    private static String describe(int exit) {
        return exit > 128 ? "was killed by signal " + (exit - 128) + " (exit " + exit + ")" : "exited with code " + exit;
    }

    private static Thread pump(InputStream in, PrintStream to, String prefix) {
        return Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (to != null && !line.startsWith("[Gloo] ")) to.println(prefix + line);
                }
            } catch (IOException e) {
                // the worker is gone; its exit code tells the story
            }
        });
    }

}
