package org.bloomtune.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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

    /**
     * {@code setenv(name, value, 0)} in the C library, where libtorch, libgomp and glibc read their
     * variables (Java's {@link System#getenv} is a copy taken at JVM start). A value already set, by
     * the user or earlier, stands. A no-op off POSIX, where those libraries keep their defaults.
     */
    static void setenvIfAbsent(String name, String value) {
        if (Setenv.HANDLE.isEmpty()) return;
        int rc;
        // A confined arena: the C library copies the strings.
        try (Arena arena = Arena.ofConfined()) {
            rc = (int) Setenv.HANDLE.get().invokeExact(arena.allocateFrom(name), arena.allocateFrom(value), 0);
        } catch (Throwable t) {
            throw new IllegalStateException("cannot set " + name, t);
        }
        if (rc != 0) throw new IllegalStateException("setenv(" + name + ") failed");
    }

    /**
     * The C library's {@code getenv}: the environment native code sees, which {@code setenv} changes
     * and {@link System#getenv} (a copy taken at JVM start) does not. Null when unset or off POSIX.
     */
    static String getenv(String name) {
        if (Getenv.HANDLE.isEmpty()) return null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = (MemorySegment) Getenv.HANDLE.get().invokeExact(arena.allocateFrom(name));
            return value.equals(MemorySegment.NULL) ? null : value.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException("getenv(" + name + ") failed", t);
        }
    }

    /** {@code _exit(code)}: the process ends without running C exit handlers. Returns only off POSIX. */
    static void exitNow(int code) {
        if (Exit.HANDLE.isEmpty()) return;
        try {
            Exit.HANDLE.get().invokeExact(code);
        } catch (Throwable t) {
            throw new IllegalStateException("_exit failed", t);
        }
    }

    private static final class Exit {
        static final Optional<MethodHandle> HANDLE = function("_exit", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
    }

    private static final class Setenv {
        static final Optional<MethodHandle> HANDLE = function("setenv",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    }

    private static final class Getenv {
        static final Optional<MethodHandle> HANDLE = function("getenv", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    }
}
