package org.bloomtune.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --low-memory}'s request for huge pages lands where libtorch reads it — the C library's
 * environment, not Java's copy — and leaves a value the user set alone. (That libtorch then backs
 * large tensors with huge pages is measured, with the step time it buys back, in benchmarks/FINDINGS.md;
 * this JVM's libtorch has long since made its first allocation.)
 */
class ProcessMemoryTest {
    private static final String THP = "THP_MEM_ALLOC_ENABLE";

    @Test
    void hugePagesAreRequestedInTheNativeEnvironmentUnlessTheUserChoseOtherwise() throws Throwable {
        String before = LibC.getenv(THP);
        try {
            setenv(THP, "0");
            assertFalse(ProcessMemory.requestHugePages(), "a user's THP_MEM_ALLOC_ENABLE=0 stands");
            assertEquals("0", LibC.getenv(THP));

            unsetenv(THP);
            assertTrue(ProcessMemory.requestHugePages());
            assertEquals("1", LibC.getenv(THP));
        } finally {
            if (before == null) unsetenv(THP); else setenv(THP, before);
        }
    }

    private static void setenv(String name, String value) throws Throwable {
        MethodHandle setenv = LibC.function("setenv", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT)).orElseThrow();
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(0, (int) setenv.invokeExact(arena.allocateFrom(name), arena.allocateFrom(value), 1));
        }
    }

    private static void unsetenv(String name) throws Throwable {
        MethodHandle unsetenv = LibC.function("unsetenv", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS)).orElseThrow();
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(0, (int) unsetenv.invokeExact(arena.allocateFrom(name)));
        }
    }
}
