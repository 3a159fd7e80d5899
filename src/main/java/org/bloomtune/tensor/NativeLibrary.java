package org.bloomtune.tensor;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
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
 * BloomTune's own C library (native/, built by Maven into the jar), loaded once through FFM for
 * the kernels and the CPU allocator alike, so both see one copy of its state. Absent on platforms
 * the build did not compile it for, and when {@link KernelSelection} is {@code none}.
 */
public final class NativeLibrary {
    public static final String NAME = "bloomtune-kernels-linux-x86_64.so";
    // Loaded once for the life of the process: the global arena never unloads it.
    private static final Optional<SymbolLookup> LOOKUP = load();

    private NativeLibrary() {}

    public static boolean available() { return LOOKUP.isPresent(); }

    /** Why the library is not loaded, or null when it is: turned off by {@link KernelSelection}, or not built for this platform. */
    public static String unavailableReason() {
        if (available()) return null;
        return KernelSelection.current() == KernelSelection.NONE ? "-D" + KernelSelection.PROPERTY + "=none" : NAME + " is not available on this platform";
    }

    /** {@code name} bound as an FFM downcall; throws when the library or the symbol is absent. */
    public static MethodHandle bind(String name, FunctionDescriptor descriptor) {
        return downcall(LOOKUP.orElseThrow(() -> new UnsupportedOperationException(NAME + " is not available")), name, descriptor);
    }

    /** The address of the library's function {@code name}, for a native caller; throws when the library or the symbol is absent. */
    public static MemorySegment address(String name) {
        return LOOKUP.orElseThrow(() -> new UnsupportedOperationException(NAME + " is not available")).find(name)
                .orElseThrow(() -> new UnsupportedOperationException(NAME + " has no " + name));
    }

    private static MethodHandle downcall(SymbolLookup lookup, String name, FunctionDescriptor descriptor) {
        return Linker.nativeLinker().downcallHandle(lookup.find(name).orElseThrow(
                () -> new UnsupportedOperationException(NAME + " has no " + name)), descriptor);
    }

    private static Optional<SymbolLookup> load() {
        if (KernelSelection.current() == KernelSelection.NONE) return Optional.empty();
        if (!System.getProperty("os.name").startsWith("Linux") || !System.getProperty("os.arch").equals("amd64")) {
            return Optional.empty();
        }
        URL url = NativeLibrary.class.getResource("/" + NAME);
        if (url == null) return Optional.empty();
        // The library needs libgomp.so.1: libtorch's copy, loaded first, is the one it binds to.
        org.bytedeco.javacpp.Loader.load(org.bytedeco.pytorch.global.torch.class);
        SymbolLookup lookup = SymbolLookup.libraryLookup(file(url), Arena.global());
        capInstructionSets(lookup, KernelSelection.current());
        return Optional.of(lookup);
    }

    /** Lowers what the kernels' CPU checks may report to {@code selection}'s level, before any is bound. */
    private static void capInstructionSets(SymbolLookup lookup, KernelSelection selection) {
        MethodHandle set = downcall(lookup, "bt_set_isa_cap", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
        try {
            set.invokeExact(selection.isaCap);
        } catch (Throwable t) {
            throw new IllegalStateException("FFM call to bt_set_isa_cap failed", t);
        }
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
            throw new UncheckedIOException("cannot extract " + NAME + ": " + e.getMessage(), e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
