package org.bloomtune.model;

import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.Residency;
import org.bloomtune.tensor.ResidentPages;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A cache reserved far ahead of what it holds is resident a little past the written positions —
 * {@link KvCache#POPULATED_AHEAD} of them, made resident before a step writes there — and nowhere
 * further, as mincore reports it: the keys' rows and every (row, head) pair's values alike.
 */
class KvCacheResidencyTest {
    private static final long PAIRS = 4;
    private static final long HEAD_DIM = 64;
    private static final long RESERVED = 4000;

    @Test
    void aCacheReservedFarAheadIsResidentOnlyNearWhatIsWritten() {
        CpuCachingAllocator.releaseCached();       // fresh mappings: no page resident before the cache writes
        try (KvCache cache = new KvCache(1, RESERVED); TensorOptions options = new TensorOptions(ScalarType.Float)) {
            long prompt = 10;
            Tensor[] buffers = cache.buffersWithRoom(0, PAIRS, HEAD_DIM, options, prompt);
            cache.advance(prompt);
            assertResidentUpTo(buffers, prompt + KvCache.POPULATED_AHEAD);
            // Steps as the native decode step takes them: room for one position, made resident ahead when the last run is used up.
            while (cache.length() < 100) {
                buffers = cache.buffersWithRoom(0, PAIRS, HEAD_DIM, options, 1);
                cache.populateAhead(1);
                cache.advance(1);
            }
            assertResidentUpTo(buffers, prompt + KvCache.POPULATED_AHEAD + 1 + KvCache.POPULATED_AHEAD);
        }
    }

    /**
     * Positions below {@code positions} resident in every key row and value pair (where the kernel
     * can be asked: ResidentPagesTest holds where it must); none a page and more beyond.
     */
    private static void assertResidentUpTo(Tensor[] buffers, long positions) {
        boolean asked = ResidentPages.supported();
        long keys = NativeMemory.of(buffers[0]).address();
        long values = NativeMemory.of(buffers[1]).address();
        long beyond = positions + Residency.PAGE / (HEAD_DIM * 4) + 1;
        for (long pair = 0; pair < PAIRS; pair++) {
            long pairValues = values + pair * RESERVED * HEAD_DIM * 4;
            assertTrue(!asked || Residency.resident(pairValues + (positions - 1) * HEAD_DIM * 4), "pair " + pair + ": value " + (positions - 1));
            assertFalse(Residency.resident(pairValues + beyond * HEAD_DIM * 4), "pair " + pair + ": value " + beyond);
            for (long d = 0; d < HEAD_DIM; d += 21) {
                long row = keys + (pair * HEAD_DIM + d) * RESERVED * 4;
                assertTrue(!asked || Residency.resident(row + (positions - 1) * 4), "pair " + pair + ", key row " + d + ": " + (positions - 1));
                assertFalse(Residency.resident(row + (positions + 1024) * 4), "pair " + pair + ", key row " + d + ": " + (positions + 1024));
            }
        }
    }
}
