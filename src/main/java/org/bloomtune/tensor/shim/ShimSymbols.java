package org.bloomtune.tensor.shim;

import org.bloomtune.tensor.LibTorch;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Finds functions of libtorch's exported C shim ({@code aoti_torch_*} in libtorch_cpu.so) after
 * JavaCPP has loaded libtorch, and binds them as FFM downcalls.
 */
final class ShimSymbols {
    // The library stays loaded for the life of the process, so its lookup's arena never closes.
    private static final SymbolLookup LOOKUP = lookup();

    private ShimSymbols() {}

    static MethodHandle bind(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = LOOKUP.find(name).orElseThrow(() ->
                new UnsupportedOperationException("libtorch's C shim has no " + name + " in this build"));
        return Linker.nativeLinker().downcallHandle(symbol, descriptor);
    }

    private static SymbolLookup lookup() {
        LibTorch.init();
        SymbolLookup loaded = SymbolLookup.loaderLookup();
        if (loaded.find("aoti_torch_delete_tensor_object").isPresent()) return loaded;
        // JavaCPP loaded libtorch_cpu.so as a dependency of its JNI library: open it by path.
        return LibTorch.bundledLibrary("libtorch_cpu.so");
    }
}
