package org.bloomtune.model;

import org.bloomtune.kernels.Int8Dequantize;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Storage;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;

/**
 * A few reused buffers per thread for int8 weights dequantized to floats: a fresh allocation of a
 * weight's size is served by fresh pages, whose first-touch faults cost more than the conversion
 * itself (benchmarks/FINDINGS.md). A buffer is handed out again only when nothing else references
 * its storage — in particular no autograd graph that saved the weight for its backward — so a
 * recomputed block reuses the buffers the previous block's backward let go, while a graph of
 * many blocks (AUTOGRAD) simply gets fresh allocations once the few buffers are taken. Buffers
 * grow to the largest weight seen and live as long as their thread.
 */
final class DequantizeScratch {
    /** Buffers per thread: a block's four weights, which its recomputation keeps for its backward. */
    static final int BUFFERS = 4;
    /**
     * Largest weight kept in the pool: a transformer layer's weights are reused block after block,
     * an lm_head-sized one (250880 × hidden) is used once per forward and would stay resident.
     */
    static final long MAX_POOLED_BYTES = 64L << 20;
    private static final ThreadLocal<List<Tensor>> POOL = ThreadLocal.withInitial(ArrayList::new);

    private DequantizeScratch() {}

    /**
     * {@code w} dequantized to {@code dtype} [out, in], in a pooled buffer where one is free, else
     * freshly allocated. Close the handle once the product that uses it is formed (a graph that
     * saved it keeps its own reference).
     */
    static Tensor weight(Int8Weight w, ScalarType dtype) {
        if (!Int8Dequantize.applies(w.values(), w.scales(), dtype)) return w.dequantize(dtype);
        long rows = w.outFeatures();
        long k = w.inFeatures();
        long bytes = bytes(w, dtype);
        Tensor buffer = bytes > MAX_POOLED_BYTES ? null : take(bytes);
        if (buffer == null) return Int8Dequantize.dequantize(w.values(), w.scales(), dtype);
        try (Tensor raw = buffer.narrow(0, 0, bytes); Tensor typed = raw.view(dtype)) {
            return Int8Dequantize.into(w.values(), w.scales(), typed.view(rows, k));
        }
    }

    /** True when {@code w} dequantized to {@code dtype} is small enough for the pool (a layer's weight, not an lm_head). */
    static boolean pooled(Int8Weight w, ScalarType dtype) { return bytes(w, dtype) <= MAX_POOLED_BYTES; }

    private static long bytes(Int8Weight w, ScalarType dtype) {
        return w.outFeatures() * w.inFeatures() * (dtype.value == ScalarType.BFloat16.value ? 2 : 4);
    }

    /** A free pooled buffer of at least {@code bytes} (grown, or added to the pool), or null when all are in use. */
    private static Tensor take(long bytes) {
        List<Tensor> pool = POOL.get();
        int smaller = -1;
        for (int i = 0; i < pool.size(); i++) {
            if (!free(pool.get(i))) continue;
            if (pool.get(i).nbytes() >= bytes) return pool.get(i);
            smaller = i;
        }
        if (smaller < 0 && pool.size() >= BUFFERS) return null;
        Tensor fresh = Tensors.escape(torch.empty(new long[]{bytes}, new TensorOptions(ScalarType.Byte), new MemoryFormatOptional()));
        if (smaller >= 0) pool.set(smaller, fresh).close();
        else pool.add(fresh);
        return fresh;
    }

    /**
     * Frees this thread's free buffers — for the reverse pass's phases that peak without weights
     * (the head), so the pool does not add to their peak. Buffers still referenced stay.
     */
    static void release() {
        List<Tensor> pool = POOL.get();
        pool.removeIf(b -> {
            if (!free(b)) return false;
            b.close();
            return true;
        });
    }

    /** This thread's buffers something outside the pool still references (a product in flight, or a graph that saved one). */
    static int inUse() {
        return (int) POOL.get().stream().filter(b -> !free(b)).count();
    }

    /** True when only the pool references the buffer's storage (the handle read here borrows it, adding no reference). */
    static boolean free(Tensor buffer) {
        try (Storage s = buffer.storage()) {
            return s.use_count() == 1;
        }
    }
}
