package org.bloomtune.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * BloomTune's own C kernels (native/, built by Maven into the jar), loaded through FFM. Absent on
 * platforms the build did not compile them for; callers then use the libtorch op chain.
 */
public final class NativeKernels {
    static final String LIBRARY = "bloomtune-kernels-linux-x86_64.so";
    // Loaded once for the life of the process: the global arena never unloads it.
    private static final Optional<SymbolLookup> LOOKUP = load();

    private NativeKernels() {}

    public static boolean available() { return LOOKUP.isPresent(); }

    static MethodHandle bind(String name, FunctionDescriptor descriptor) {
        SymbolLookup lookup = LOOKUP.orElseThrow(() -> new UnsupportedOperationException(LIBRARY + " is not available"));
        return Linker.nativeLinker().downcallHandle(lookup.find(name).orElseThrow(
                () -> new UnsupportedOperationException(LIBRARY + " has no " + name)), descriptor);
    }

    /**
     * {@code name} bound with {@code descriptor} when the library is loaded and its
     * {@code supported()} function (no arguments, returns int) says this CPU has the instructions
     * the kernel needs; otherwise null, and the caller keeps libtorch's path.
     */
    static MethodHandle bindIfSupported(String supported, String name, FunctionDescriptor descriptor) {
        if (!available()) return null;
        try {
            if ((int) bind(supported, FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact() == 0) return null;
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to " + supported + " failed", t);
        }
        return bind(name, descriptor);
    }

    private static Optional<SymbolLookup> load() {
        if (!System.getProperty("os.name").startsWith("Linux") || !System.getProperty("os.arch").equals("amd64")) {
            return Optional.empty();
        }
        URL url = NativeKernels.class.getResource("/" + LIBRARY);
        if (url == null) return Optional.empty();
        return Optional.of(SymbolLookup.libraryLookup(file(url), Arena.global()));
    }

    /** The library as a file: in place when running from classes, else copied out of the jar. */
    private static Path file(URL url) {
        try {
            if (url.getProtocol().equals("file")) return Path.of(url.toURI());
            Path tmp = Files.createTempFile("bloomtune-kernels", ".so");
            tmp.toFile().deleteOnExit();
            try (InputStream in = url.openStream()) {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            return tmp;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract " + LIBRARY + ": " + e.getMessage(), e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
