package org.bloomtune.train;

import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.ProcessMemory;

import java.util.Locale;

/**
 * The reverse pass a run takes when asked for {@link ReversePass#AUTO}: AUTOGRAD (faster) when its
 * estimated peak — weights plus every block's recorded activations for the longest batch, plus what
 * the caching allocator may keep on top of that ({@link CpuCachingAllocator#cacheAllowance}: real
 * data's changing shapes fill it) — fits the memory budget, RECOMPUTE_BLOCKS (one block's
 * activations at a time) otherwise. Decided once, before the first step, from the shapes alone.
 *
 * @param pass      the pass taken
 * @param autograd  AUTOGRAD's estimated peak
 * @param recompute RECOMPUTE_BLOCKS's estimated peak
 * @param budget    bytes the step may use, weights included
 */
public record ReversePassChoice(ReversePass pass, MemoryEstimate autograd, MemoryEstimate recompute, long budget) {
    /** The budget when none is given: this share of physical memory, leaving the rest to the OS and other processes. */
    public static final double DEFAULT_MEMORY_SHARE = 0.8;

    /** {@link #DEFAULT_MEMORY_SHARE} of this machine's physical memory. */
    public static long defaultBudget() {
        return (long) (DEFAULT_MEMORY_SHARE * ProcessMemory.totalBytes());
    }

    /**
     * Resolves {@code requested} for steps of {@code rows} × {@code positions} (soft prompt included);
     * a concrete pass is kept as asked.
     */
    public static ReversePassChoice choose(ReversePass requested, BloomModel model, int rows, int positions, long budget) {
        if (budget < 1) throw new IllegalArgumentException("max_memory must be positive, got " + budget);
        MemoryEstimate withAutograd = MemoryEstimate.trainingStep(model.config(), model.options(), rows, positions, true);
        MemoryEstimate withRecompute = MemoryEstimate.trainingStep(model.config(), model.options(), rows, positions, false);
        ReversePass pass = requested != ReversePass.AUTO ? requested
                : withCache(withAutograd) <= budget ? ReversePass.AUTOGRAD : ReversePass.RECOMPUTE_BLOCKS;
        return new ReversePassChoice(pass, withAutograd, withRecompute, budget);
    }

    /** The estimate of the pass taken. */
    public MemoryEstimate estimate() {
        return pass == ReversePass.AUTOGRAD ? autograd : recompute;
    }

    /** What the taken pass is estimated to add above the loaded model, the allocator's cache included (what a run's peak is checked against). */
    public long estimatedAboveLoad() {
        return withCache(estimate()) - estimate().weights();
    }

    /** An estimate's peak with the allocator's cache on top, as the budget is checked against it. */
    static long withCache(MemoryEstimate e) {
        long cached = CpuCachingAllocator.cacheAllowance(e.total());
        return e.total() > Long.MAX_VALUE - cached ? Long.MAX_VALUE : e.total() + cached;
    }

    /** One line for the log: what was taken and the figures it was taken on. */
    public String reason() {
        String figures = String.format(Locale.ROOT, "estimated peak %s with AUTOGRAD, %s with RECOMPUTE_BLOCKS, cached buffers included; budget %s",
                MemoryEstimate.size(withCache(autograd)), MemoryEstimate.size(withCache(recompute)), MemoryEstimate.size(budget));
        return "reverse pass " + pass + " (" + figures + ")";
    }
}
