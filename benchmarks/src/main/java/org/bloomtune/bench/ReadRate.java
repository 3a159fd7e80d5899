package org.bloomtune.bench;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The read rate a decode step could stream weights at: libtorch's {@code sum} over 1 GiB of
 * float32 on all its threads, best of five. The gibibyte is allocated once and kept until closed:
 * on the VMs these figures come from, a gibibyte freed right before a timed generation slowed its
 * first half second of steps by 30–60 ms every tenth of a second while the guest handed the freed
 * pages back to the host (benchmarks/FINDINGS.md), so freeing it between rows put the probe's own
 * cost into the row it measures.
 */
final class ReadRate implements AutoCloseable {
    private static final long BYTES = 1L << 30;
    private final Tensor buffer = torch.ones(BYTES / Float.BYTES);

    /** GB/s, best of five sums over the kept gibibyte. */
    double measure() {
        double best = 0;
        for (int i = 0; i < 5; i++) {
            long start = System.nanoTime();
            try (Tensor s = buffer.sum()) {
                best = Math.max(best, BYTES / (double) (System.nanoTime() - start));
            }
        }
        return best;
    }

    @Override
    public void close() { buffer.close(); }
}
