package org.bloomtune.kernels;

import org.bloomtune.tensor.LibTorch;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A scope leaves libtorch one thread on the calling thread only, keeps the kernels' count, nests, and restores. */
class SerialOpsTest {
    @BeforeAll
    static void init() {
        LibTorch.init();
    }

    @Test
    void libtorchRunsOnOneThreadInsideAndTheKernelsKeepTheirCount() throws Exception {
        int threads = torch.get_num_threads();
        assertEquals(threads, SerialOps.kernelThreads(), "outside a scope the kernels use libtorch's count");
        try (SerialOps outer = SerialOps.open()) {
            assertEquals(1, torch.get_num_threads(), "libtorch's intra-op count on this thread");
            assertEquals(threads, SerialOps.kernelThreads(), "the kernels keep the count from before");
            int elsewhere = CompletableFuture.supplyAsync(torch::get_num_threads).get();
            assertEquals(threads, elsewhere, "another thread keeps its own count");
            try (SerialOps inner = SerialOps.open()) {
                assertEquals(1, torch.get_num_threads());
                assertEquals(threads, SerialOps.kernelThreads(), "a nested scope keeps the outermost count");
            }
            assertEquals(1, torch.get_num_threads(), "closing the inner scope keeps the outer one's");
            assertEquals(threads, SerialOps.kernelThreads());
        }
        assertEquals(threads, torch.get_num_threads(), "restored");
        assertEquals(threads, SerialOps.kernelThreads());
    }
}
