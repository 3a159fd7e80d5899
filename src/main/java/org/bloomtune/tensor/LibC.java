package org.bloomtune.tensor;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/** C library functions reached through FFM; empty where the C library lacks them (not glibc). */
final class LibC {
    private LibC() {}

    /** A downcall handle for {@code name}: look it up once and keep it — creating one is not cheap. */
    static Optional<MethodHandle> function(String name, FunctionDescriptor descriptor) {
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find(name).map(symbol -> linker.downcallHandle(symbol, descriptor));
    }
}
