package org.bloomtune.tensor;

import org.bloomtune.ChildJvm;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Allocator;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BloomTune's CPU allocator as libtorch uses it: tensors made by libtorch ops get their memory
 * from it and give it back, freed buffers are reused without a new mapping, the cache stays within
 * its limit, libtorch's raw interface frees through it, and a fresh process can keep libtorch's own.
 * (Every other test's numbers are computed on its memory too.)
 */
class CpuCachingAllocatorTest {
    private static final long MIB = 1L << 20;

    @BeforeAll
    static void load() {
        LibTorch.init();
        assertTrue(CpuCachingAllocator.installed(), CpuCachingAllocator.inUse());
    }

    /**
     * Frees what earlier tests left to the garbage collector before this one counts: JavaCPP releases
     * an unclosed tensor when the collector finds it, on its own thread, and a buffer given back in the
     * middle of a test moves the process-wide figures it compares (CI once saw a 260 KiB one go).
     * Collects until the bytes in use stop changing, for at most a second.
     */
    @BeforeEach
    void settle() throws InterruptedException {
        long last = -1;
        for (int i = 0; i < 50; i++) {
            System.gc();
            Pointer.deallocateReferences();
            long inUse = CpuCachingAllocator.stats().inUse();
            if (inUse == last) return;
            last = inUse;
            Thread.sleep(20);
        }
    }

    @Test
    void libtorchOpsAllocateFromItAndAFreedBufferIsReused() {
        CpuCachingAllocator.releaseCached();
        var before = CpuCachingAllocator.stats();
        try (Tensor a = torch.ones(3 * 262144L)) {   // 3 MiB of float32 ones, made by libtorch
            var held = CpuCachingAllocator.stats();
            assertTrue(held.largeInUse() - before.largeInUse() >= 3 * MIB, held.toString());
            assertEquals(before.misses() + 1, held.misses());
            try (Tensor b = a.mul(new Scalar(2.0))) {
                assertEquals(2.0, b.index_select(0, torch.tensor(786431L)).item_double(), 0);
            }
            var afterFree = CpuCachingAllocator.stats();
            assertEquals(held.largeInUse(), afterFree.largeInUse(), "the product's buffer is back");
            assertTrue(afterFree.largeCached() >= 3 * MIB, "and kept: " + afterFree);
            try (Tensor c = a.add(new Scalar(1.0))) {
                var reused = CpuCachingAllocator.stats();
                assertEquals(afterFree.hits() + 1, reused.hits(), "the sum reuses the product's buffer: " + reused);
                assertEquals(afterFree.misses(), reused.misses());
                assertEquals(2.0, c.index_select(0, torch.tensor(786431L)).item_double(), 0, "on reused memory");
            }
        }
        assertEquals(before.largeInUse(), CpuCachingAllocator.stats().largeInUse());
    }

    @Test
    void libtorchsRawInterfaceFreesThroughIt() {
        Allocator cpu = torch.getCPUAllocator();
        var before = CpuCachingAllocator.stats();
        Pointer large = cpu.raw_allocate(5 * MIB);
        Pointer small = cpu.raw_allocate(100);
        assertTrue(CpuCachingAllocator.stats().inUse() >= before.inUse() + 5 * MIB + 100);
        assertEquals(0, large.address() % 64, "64-byte aligned like libtorch's own");
        assertEquals(0, small.address() % 64);
        cpu.raw_deallocate(large);
        cpu.raw_deallocate(small);
        assertEquals(before.inUse(), CpuCachingAllocator.stats().inUse());
    }

    @Test
    void theFootprintStaysWithinTheLiveHighWaterMarkPlusTheLimitOverThousandsOfMixedSizes() {
        // Held live throughout, so the high-water mark exceeds the limit and the limit is what bounds the cache.
        try (Tensor ballast = torch.empty(16 * MIB)) {
            churn(0, 4);   // the cache never takes the footprint past the most that was live
            long hits = churn(32 * MIB, 4);
            // Four sizes, at most five live, room for a buffer of each size: nearly every request finds one.
            assertTrue(hits > 2900, "requests reuse a buffer: " + hits + " of 3000");
        } finally {
            CpuCachingAllocator.setCacheLimit(CpuCachingAllocator.DEFAULT_CACHE_LIMIT);
        }
    }

    @Test
    void theCacheAllowanceIsTheLimitOrThePeakWhereSmallerAndNothingWithoutCaching() {
        try {
            CpuCachingAllocator.setCacheLimit(32 * MIB);
            assertEquals(32 * MIB, CpuCachingAllocator.cacheAllowance(1L << 40));
            assertEquals(5 * MIB, CpuCachingAllocator.cacheAllowance(5 * MIB));
            CpuCachingAllocator.setCaching(false);
            assertEquals(0, CpuCachingAllocator.cacheAllowance(1L << 40));
        } finally {
            CpuCachingAllocator.setCaching(true);
            CpuCachingAllocator.setCacheLimit(CpuCachingAllocator.DEFAULT_CACHE_LIMIT);
        }
    }

    @Test
    void theCacheHoldsNoMoreThanTheMostThatWasLiveWhenThatIsBelowTheLimit() {
        try {
            // Sixty-four sizes of 0.25-16 MiB, as batches of changing shapes ask: without the rule the cache would
            // keep a buffer of nearly every size, hundreds of MiB against a few tens live.
            churn(1L << 30, 64);
        } finally {
            CpuCachingAllocator.setCacheLimit(CpuCachingAllocator.DEFAULT_CACHE_LIMIT);
        }
    }

    /**
     * 3000 tensors of 1 to {@code sizes} quarter-MiB steps (float32: 1 to sizes MiB), at most five
     * live, checking the footprint at every step against the allocator's bound — the most live at
     * once, or live plus the smaller of the limit and that high-water mark; returns the hits.
     */
    private static long churn(long limit, int sizes) {
        CpuCachingAllocator.releaseCached();   // a new high-water mark from here
        CpuCachingAllocator.setCacheLimit(limit);
        var start = CpuCachingAllocator.stats();
        long mostLive = start.largeInUse();
        long footprint = start.largeInUse() + start.largeCached();
        Random random = new Random(7);
        List<Tensor> live = new ArrayList<>();
        for (int i = 0; i < 3000; i++) {
            var before = CpuCachingAllocator.stats();
            live.add(torch.empty((1 + random.nextInt(sizes)) * 262144L));
            var now = CpuCachingAllocator.stats();
            mostLive = Math.max(mostLive, now.largeInUse());
            long grown = now.largeInUse() + now.largeCached();
            if (now.misses() > before.misses()) {
                // Only a new mapping grows the footprint, and only up to this bound.
                long bound = Math.max(mostLive, now.largeInUse() + Math.min(limit, mostLive));
                assertTrue(grown <= bound, "limit " + limit + ", step " + i + ": " + now + " past " + bound);
            } else {
                assertEquals(footprint, grown, "a reused buffer moves from cached to live: step " + i);
            }
            if (live.size() > 4) live.remove(random.nextInt(live.size())).close();
            var freed = CpuCachingAllocator.stats();
            footprint = freed.largeInUse() + freed.largeCached();
            assertTrue(footprint <= grown, "a freed buffer is cached or unmapped, never more: step " + i);
        }
        live.forEach(Tensor::close);
        var end = CpuCachingAllocator.stats();
        assertEquals(start.largeInUse(), end.largeInUse(), "every buffer given back");
        CpuCachingAllocator.releaseCached();
        assertEquals(0, CpuCachingAllocator.stats().largeCached());
        return end.hits() - start.hits();
    }

    @Test
    void pastTheBoundANewBufferTakesOverACachedOnesPagesCutOrGrown() {
        CpuCachingAllocator.releaseCached();   // a new high-water mark from here
        CpuCachingAllocator.setCacheLimit(0);
        try {
            long first;
            try (Tensor a = torch.full(new long[]{8 * 262144L}, new Scalar(7.0))) {   // 8 MiB of sevens
                first = a.data_ptr().address();
            }
            var cached = CpuCachingAllocator.stats();
            try (Tensor cut = torch.empty(5 * 262144L)) {
                var now = CpuCachingAllocator.stats();
                assertEquals(cached.recycled() + 1, now.recycled(), "5 MiB more would pass the bound: " + now);
                assertEquals(first, cut.data_ptr().address(), "the cached buffer, cut");
                assertEquals(5 * 262144.0 * 7, cut.sum().item_double(), 0, "its pages kept, not zeroed: " + now);
                assertEquals(0, now.largeCached(), "its tail unmapped, nothing else cached");
                assertEquals(6 * MIB, now.largeInUse() - cached.largeInUse(), "cut at a 2 MiB boundary: " + now);
            }
            try (PointerScope views = new PointerScope(); Tensor grown = torch.empty(10 * 262144L)) {   // the scope frees the narrow views
                var now = CpuCachingAllocator.stats();
                assertEquals(cached.recycled() + 2, now.recycled(), now.toString());
                assertEquals(5 * 262144.0 * 7, grown.narrow(0, 0, 5 * 262144L).sum().item_double(), 0, "the cut buffer's pages moved into it");
                assertEquals(0, grown.narrow(0, 6 * 262144L, 4 * 262144L - 16).abs().sum().item_double(), 0, "the growth fresh zeros");
                assertEquals(0, now.largeCached());
                grown.fill_(new Scalar(1.0));
                assertEquals(10 * 262144.0, grown.sum().item_double(), 0, "all of it writable");
            }
            var afterFree = CpuCachingAllocator.stats();
            try (Tensor again = torch.empty(10 * 262144L)) {
                assertEquals(afterFree.hits() + 1, CpuCachingAllocator.stats().hits(), "the grown buffer is cached whole and reused: " + afterFree);
                assertEquals(afterFree.recycled(), CpuCachingAllocator.stats().recycled());
            }
        } finally {
            CpuCachingAllocator.setCacheLimit(CpuCachingAllocator.DEFAULT_CACHE_LIMIT);
            CpuCachingAllocator.releaseCached();
        }
    }

    @Test
    void withCachingOffEveryFreedBufferIsUnmapped() {
        CpuCachingAllocator.setCaching(false);
        try {
            var before = CpuCachingAllocator.stats();
            for (int i = 0; i < 20; i++) {
                try (Tensor t = torch.ones(2 * 262144L)) {
                    assertEquals(2 * 262144.0, t.sum().item_double(), 0);
                }
            }
            var after = CpuCachingAllocator.stats();
            assertEquals(0, after.largeCached());
            assertEquals(before.hits(), after.hits(), "nothing reused");
            assertEquals(before.largeInUse(), after.largeInUse());
        } finally {
            CpuCachingAllocator.setCaching(true);
        }
    }

    @Test
    void largeBuffersAreOnHugePagesUnlessTheThreadAsksForSmallOnes() throws Exception {
        String thp = HugePages.setting();
        CpuCachingAllocator.releaseCached();   // each buffer below a new mapping
        long huge = freshBufferKb();
        long small;
        try (CpuCachingAllocator.SmallPages reserved = CpuCachingAllocator.smallPages()) {
            try (CpuCachingAllocator.SmallPages nested = CpuCachingAllocator.smallPages()) {
                CpuCachingAllocator.releaseCached();
                small = freshBufferKb();
            }
            CpuCachingAllocator.releaseCached();
            small += freshBufferKb();                // the enclosing scope still holds
        }
        CpuCachingAllocator.releaseCached();
        long hugeAgain = freshBufferKb();
        String seen = "THP " + thp + ": huge " + huge + " kB, small " + small + " kB, after the scope " + hugeAgain + " kB";
        if (thp.equals("never")) {
            assertEquals(0, huge + small + hugeAgain, seen);
            return;
        }
        assertTrue(huge >= 4096 && hugeAgain >= 4096, "an 8 MiB buffer on at least two 2 MiB pages: " + seen);
        if (thp.equals("madvise")) assertEquals(0, small, "and on none in the scope: " + seen);
    }

    /** kB of huge pages under a new, fully written 8 MiB tensor. */
    private static long freshBufferKb() throws Exception {
        try (Tensor t = torch.empty(2L << 20)) {
            t.fill_(new Scalar(1.0f));
            return HugePages.backingKb(t.data_ptr().address());
        }
    }

    @Test
    void aFreshProcessKeepsLibtorchsAllocatorWhenAsked() throws Exception {
        for (String choice : new String[]{"libtorch", "caching"}) {
            ProcessBuilder pb = new ProcessBuilder(ChildJvm.cli()).redirectErrorStream(true);
            pb.command().add("--version");
            pb.environment().put(CpuCachingAllocator.VARIABLE, choice);
            Process cli = pb.start();
            String out = new String(cli.getInputStream().readAllBytes());
            assertTrue(cli.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, cli.exitValue(), out);
            String expected = choice.equals("libtorch") ? "CPU allocator: libtorch's (" + CpuCachingAllocator.VARIABLE + "=libtorch)"
                    : "CPU allocator: BloomTune's caching allocator";
            assertTrue(out.contains(expected), out);
        }
    }
}
