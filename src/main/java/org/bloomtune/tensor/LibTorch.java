package org.bloomtune.tensor;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.global.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;

/**
 * Loads libtorch once, with the OpenMP setting BloomTune depends on for speed.
 *
 * <p>libtorch's OpenMP threads spin after every parallel op by default, and on a small machine
 * they then compete with OpenBLAS's threads for the same cores during the next matmul: measured
 * here, a block took several times longer (benchmarks/FINDINGS.md). libgomp reads {@code OMP_WAIT_POLICY} once, when it
 * is loaded, so it is set (unless the user set it) through the C library's {@code setenv} before
 * libtorch is loaded. Programs that create libtorch tensors before touching BloomTune should call
 * {@link #init()} first, or export {@code OMP_WAIT_POLICY=PASSIVE} themselves.
 */
public final class LibTorch {
    private static boolean loaded;

    private LibTorch() {}

    public static synchronized void init() {
        if (loaded) return;
        setenvIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
        Loader.load(torch.class);
        loaded = true;
    }

    /** libtorch's version as its build settings state it (e.g. "2.10.0"), or "unknown". */
    public static String version() {
        init();
        String config = torch.show_config().getString();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("TORCH_VERSION=([^,\\s]+)").matcher(config);
        return m.find() ? m.group(1) : "unknown";
    }

    /** Whether this libtorch was built with CUDA and sees a device: what {@code --device cuda} needs. */
    public static boolean cudaAvailable() {
        init();
        return torch.cuda_is_available();
    }

    private static void setenvIfAbsent(String name, String value) {
        var setenv = LibC.function("setenv",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        if (setenv.isEmpty()) return;   // not a POSIX C library: keep libgomp's default
        // A confined arena: the strings are only needed for the duration of the call.
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) setenv.get().invokeExact(arena.allocateFrom(name), arena.allocateFrom(value), 0);
            if (rc != 0) throw new IllegalStateException("setenv(" + name + ") failed");
        } catch (Throwable t) {
            throw new IllegalStateException("cannot set " + name + " before loading libtorch", t);
        }
    }
}
