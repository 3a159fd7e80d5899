package org.bloomtune.tensor;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CpuFeaturesTest {
    @Test
    void nativeBf16IsWhatTheKernelsFlagsSay() throws Exception {
        // lscpu's source, read line by line here: a flags line naming avx512_bf16 or amx_bf16
        List<String> lines = Files.exists(Path.of("/proc/cpuinfo")) ? Files.readAllLines(Path.of("/proc/cpuinfo")) : List.of();
        boolean bf16 = lines.stream().filter(l -> l.startsWith("flags"))
                .map(l -> List.of(l.split("[\\s:]+")))
                .anyMatch(flags -> flags.contains("avx512_bf16") || flags.contains("amx_bf16"));
        assertEquals(bf16, CpuFeatures.nativeBf16());
    }
}
