package org.bloomtune.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

/** What this CPU can do natively, from the kernel's {@code /proc/cpuinfo} flags (none elsewhere). */
public final class CpuFeatures {
    private static final Set<String> FLAGS = read();

    private CpuFeatures() {}

    /** True when bfloat16 products run in hardware: AVX512_BF16 or AMX-BF16. */
    public static boolean nativeBf16() {
        return FLAGS.contains("avx512_bf16") || FLAGS.contains("amx_bf16");
    }

    /** True when the CPU has AVX-512F: 512-bit float32 FMAs. */
    public static boolean avx512f() {
        return FLAGS.contains("avx512f");
    }

    private static Set<String> read() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("flags")) {
                    return Arrays.stream(line.substring(line.indexOf(':') + 1).trim().split("\\s+")).collect(Collectors.toUnmodifiableSet());
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or no readable cpuinfo: no native features assumed
        }
        return Set.of();
    }
}
