package org.bloomtune.tensor;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.global.torch;

import java.io.File;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;

/**
 * Loads libtorch once, with the settings BloomTune depends on for speed; each is applied only
 * when the user has not set it.
 *
 * <ul>
 *   <li>{@code OMP_WAIT_POLICY=PASSIVE}: libtorch's OpenMP threads spin after every parallel op
 *   by default, and on a small machine they then compete with OpenBLAS's threads for the same
 *   cores during the next matmul: measured here, a block took several times longer
 *   (benchmarks/FINDINGS.md).</li>
 *   <li>{@code OMP_NUM_THREADS} = the cores this process may use, as the operating system counts
 *   them. libtorch's default is the physical cores it finds through CPUID, and some virtual
 *   machines present their vCPUs there as hyperthreads of one core while the kernel (and their
 *   speed) say separate cores: libtorch then computes on one thread of two.</li>
 *   <li>{@code OPENBLAS_THREAD_TIMEOUT=20} on CPUs with AVX-512F (unless {@value KernelSelection#PROPERTY}
 *   narrows the kernels): there BloomTune's own float32 GEMM takes the many-row products and
 *   OpenBLAS only the attention's; OpenBLAS's idle threads spin some 2^28 cycles after each of its
 *   calls by default and take the cores from the kernel's threads, and after 2^20 they sleep
 *   (benchmarks/FINDINGS.md).</li>
 *   <li>JavaCPP's {@code maxPhysicalBytes=0}: otherwise JavaCPP reads {@code /proc/self/statm}
 *   each time a tensor handle is made — hundreds of times per decode step — to run the garbage
 *   collector when the process's memory exceeds twice the Java heap, and fails allocations past
 *   it: a model larger than that would be refused. BloomTune frees its tensors itself.</li>
 * </ul>
 *
 * <p>Once libtorch is loaded, its CPU tensors are given {@link CpuCachingAllocator} instead of
 * glibc's heap, unless {@code BLOOMTUNE_CPU_ALLOCATOR=libtorch}.
 *
 * <p>libgomp and libtorch read their variables once, when loaded, and JavaCPP its property when
 * its classes initialize, so they are set (through the C library's {@code setenv}) before libtorch
 * is loaded. Programs that create libtorch tensors before touching BloomTune should call
 * {@link #init()} first, or set them themselves.
 */
public final class LibTorch {
    private static final String MAX_PHYSICAL_BYTES = "org.bytedeco.javacpp.maxPhysicalBytes";
    private static boolean loaded;

    private LibTorch() {}

    public static synchronized void init() {
        if (loaded) return;
        LibC.setenvIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
        if (System.getenv("OMP_NUM_THREADS") == null && System.getenv("MKL_NUM_THREADS") == null) {
            LibC.setenvIfAbsent("OMP_NUM_THREADS", Integer.toString(CpuCores.usable()));
        }
        if (ownFloat32Gemm()) LibC.setenvIfAbsent("OPENBLAS_THREAD_TIMEOUT", "20");
        if (System.getProperty(MAX_PHYSICAL_BYTES) == null) System.setProperty(MAX_PHYSICAL_BYTES, "0");
        Loader.load(torch.class);
        loaded = true;
        CpuCachingAllocator.installUnlessDisabled();
    }

    /** Whether the float32 GEMM kernel (native/f32_gemm.c) will run: AVX-512F, and every kernel selected. */
    private static boolean ownFloat32Gemm() {
        try {
            return CpuFeatures.avx512f() && KernelSelection.current() == KernelSelection.ALL;
        } catch (IllegalArgumentException badProperty) {
            return false;                       // reported where the kernels read it
        }
    }

    /**
     * A library JavaCPP unpacked beside libtorch's JNI wrapper (libtorch_cpu.so, libc10.so), opened
     * by path for FFM: JavaCPP loads them as dependencies, which FFM's loader lookup does not see.
     */
    public static SymbolLookup bundledLibrary(String fileName) {
        init();
        File jni = new File(Loader.load(torch.class));
        File library = new File(jni.getParentFile(), fileName);
        if (!library.isFile()) throw new UnsupportedOperationException("cannot find " + fileName + " next to " + jni);
        // Loaded for the life of the process: the global arena never unloads it.
        return SymbolLookup.libraryLookup(library.toPath(), Arena.global());
    }

    /** libtorch's version as its build settings state it (e.g. "2.10.0"), or "unknown". */
    public static String version() {
        init();
        String config = torch.show_config().getString();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("TORCH_VERSION=([^,\\s]+)").matcher(config);
        return m.find() ? m.group(1) : "unknown";
    }

    /** The threads libtorch's parallel ops (and BloomTune's row kernels) run on in this thread. */
    public static int threads() {
        init();
        return torch.get_num_threads();
    }

    /** Whether this libtorch was built with CUDA and sees a device: what {@code --device cuda} needs. */
    public static boolean cudaAvailable() {
        init();
        return torch.cuda_is_available();
    }
}
