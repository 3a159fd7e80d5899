package org.bloomtune.tensor;

import org.bloomtune.ChildJvm;
import org.bloomtune.kernels.Bf16Gemm;
import org.bloomtune.kernels.F32RowsLinear;
import org.bloomtune.kernels.Int8RowsLinear;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code -Dbloomtune.kernels}: the values it takes, what each leaves bound in this JVM (surefire
 * runs this class under all three), and the CLI's answer to a bad value.
 */
class KernelSelectionTest {

    @Test
    void parsesTheThreeValuesInAnyCaseAndNamesThePropertyOtherwise() {
        assertEquals(KernelSelection.ALL, KernelSelection.parse(null));
        assertEquals(KernelSelection.ALL, KernelSelection.parse("all"));
        assertEquals(KernelSelection.AVX2, KernelSelection.parse("avx2"));
        assertEquals(KernelSelection.PORTABLE, KernelSelection.parse(" Portable "));
        assertEquals(KernelSelection.NONE, KernelSelection.parse("NONE"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelSelection.parse("sse2"));
        assertTrue(e.getMessage().contains("bloomtune.kernels") && e.getMessage().contains("'sse2'"), e.getMessage());
    }

    @Test
    void thisJvmBindsWhatItsSelectionAllows() {
        boolean linuxX64 = System.getProperty("os.name").startsWith("Linux") && System.getProperty("os.arch").equals("amd64");
        switch (KernelSelection.current()) {
            case ALL -> {
                assertEquals(linuxX64, NativeLibrary.available());
                // Bound exactly when the CPU has what the kernels check for, as /proc/cpuinfo reports it.
                List<String> flags = linuxX64 ? cpuFlags() : List.of();
                assertEquals(flags.contains("avx512f"), F32RowsLinear.supported());
                assertEquals(flags.contains("avx512_bf16") && flags.contains("avx512bw"), Bf16Gemm.supported());
                assertEquals(flags.contains("avx2") && flags.contains("fma"), Int8RowsLinear.supported());
            }
            case AVX2 -> {
                assertEquals(linuxX64, NativeLibrary.available());
                assertFalse(Bf16Gemm.supported() || F32RowsLinear.supported(), "an AVX-512 kernel is bound");
                assertEquals(linuxX64 && cpuFlags().contains("avx2") && cpuFlags().contains("fma"), Int8RowsLinear.supported());
            }
            case PORTABLE -> {
                assertEquals(linuxX64, NativeLibrary.available());
                assertFalse(Bf16Gemm.supported() || F32RowsLinear.supported() || Int8RowsLinear.supported(), "an instruction-set kernel is bound");
            }
            case NONE -> {
                assertFalse(NativeLibrary.available());
                assertTrue(CpuCachingAllocator.inUse().startsWith("libtorch's"), CpuCachingAllocator.inUse());
            }
        }
    }

    @Test
    void theCliSaysWhichKernelsItUsesAndRefusesABadValueWithExitTwo() throws IOException, InterruptedException {
        assertTrue(run("none").contains("native kernels (-Dbloomtune.kernels): none"));
        String bad = run("sse2");
        assertTrue(bad.startsWith("exit 2\n") && bad.contains("system property bloomtune.kernels is 'sse2'; expected all, avx2, portable or none"), bad);
        assertFalse(bad.contains("Exception") || bad.contains("\tat "), "a stack trace:\n" + bad);
    }

    private static List<String> cpuFlags() {
        try (var lines = java.nio.file.Files.lines(java.nio.file.Path.of("/proc/cpuinfo"))) {
            return List.of(lines.filter(l -> l.startsWith("flags")).findFirst().orElseThrow().split(":")[1].trim().split("\\s+"));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** {@code bloomtune --version} in a child JVM with {@code -Dbloomtune.kernels=value} (the later -D wins): "exit N\n" + its output. */
    private static String run(String value) throws IOException, InterruptedException {
        List<String> command = ChildJvm.cli("-D" + KernelSelection.PROPERTY + "=" + value);
        command.add("--version");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "--version did not finish");
        return "exit " + p.exitValue() + "\n" + out;
    }
}
