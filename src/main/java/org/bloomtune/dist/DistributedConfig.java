package org.bloomtune.dist;

import java.time.Duration;
import java.util.Map;

/**
 * This process's place in a data-parallel run, in torchrun's terms: its global {@code rank} among
 * {@code worldSize} processes, its {@code localRank} on its machine, and where rank 0 serves the
 * rendezvous store ({@code masterAddr:masterPort}). {@code timeout} bounds every collective and the
 * rendezvous: a rank that dies or hangs stops the others within it.
 */
public record DistributedConfig(int rank, int worldSize, int localRank, String masterAddr, int masterPort, Duration timeout) {
    /** torchrun's default port. */
    public static final int DEFAULT_PORT = 29500;
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

    public DistributedConfig {
        if (worldSize < 1) throw new IllegalArgumentException("world size must be at least 1, got " + worldSize);
        if (rank < 0 || rank >= worldSize) throw new IllegalArgumentException("rank " + rank + " is outside [0, " + worldSize + ")");
        if (localRank < 0) throw new IllegalArgumentException("local rank must be >= 0, got " + localRank);
        if (masterAddr == null || masterAddr.isBlank()) throw new IllegalArgumentException("the master address must be given");
        if (masterPort < 1 || masterPort > 65535) throw new IllegalArgumentException("master port must lie in [1, 65535], got " + masterPort);
        if (timeout == null || timeout.isNegative() || timeout.isZero()) throw new IllegalArgumentException("the collective timeout must be positive");
    }

    /** The single-process "world". */
    public static DistributedConfig single() {
        return new DistributedConfig(0, 1, 0, "127.0.0.1", DEFAULT_PORT, DEFAULT_TIMEOUT);
    }

    public boolean isDistributed() { return worldSize > 1; }

    /**
     * A worker's config from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
     * MASTER_PORT), as a cluster scheduler sets them; null when WORLD_SIZE is absent.
     */
    public static DistributedConfig fromEnvironment(Map<String, String> env, Duration timeout) {
        if (!env.containsKey("WORLD_SIZE")) return null;
        int world = number(env, "WORLD_SIZE", -1);
        int rank = number(env, "RANK", -1);
        if (rank < 0) throw new IllegalArgumentException("WORLD_SIZE is set but RANK is not");
        return new DistributedConfig(rank, world, number(env, "LOCAL_RANK", 0), env.getOrDefault("MASTER_ADDR", "127.0.0.1"),
                number(env, "MASTER_PORT", DEFAULT_PORT), timeout);
    }

    private static int number(Map<String, String> env, String name, int fallback) {
        String v = env.get(name);
        if (v == null) return fallback;
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("environment variable " + name + " is not a number: '" + v + "'");
        }
    }
}
