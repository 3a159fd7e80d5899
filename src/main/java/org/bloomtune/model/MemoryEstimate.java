package org.bloomtune.model;

import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.ProcessMemory;

import java.util.Locale;

/**
 * What a run will need in memory, worked out from the config before any weight is loaded, so an
 * impossible request (a 100,000-token soft prompt, a 2-billion-layer config) is refused with the
 * figure instead of being discovered by the kernel's OOM killer. Upper estimates: activations count
 * the tensors each stage keeps alive at once, not the allocator's luck.
 *
 * @param weights bytes of the model's weights in their loaded form
 * @param working bytes of activations, caches and logits at the peak
 */
public record MemoryEstimate(long weights, long working) {
    private static final long FLOAT = 4;
    /** The streamed head's vocabulary block (FusedLinearCrossEntropy's default budget). */
    private static final long HEAD_BLOCK = 256L << 20;
    /**
     * What a step adds that no tensor accounts for: the allocator's cached blocks, oneDNN and
     * OpenMP scratch, the JVM heap growing while the step runs. Measured peaks of small models
     * come within a few MiB of the tensors alone, so the estimate carries this much on top.
     */
    private static final long STEP_SLACK = 64L << 20;

    public long total() { return weights > Long.MAX_VALUE - working ? Long.MAX_VALUE : weights + working; }

    /** Weights as loaded: the compute dtype, or int8 matrices with float32 row scales. */
    public static long weightBytes(BloomConfig c, LoadOptions o) {
        double h = c.hiddenSize();
        double matrices = (double) c.vocabSize() * h + c.numLayers() * 12 * h * h;
        double rest = c.parameterCount() - matrices;
        double bytes = o.int8().enabled()
                ? matrices + FLOAT * ((double) c.vocabSize() + c.numLayers() * 9 * h) + rest * o.dtype().byteSize()
                : c.parameterCount() * (double) o.dtype().byteSize();
        return saturate(bytes);
    }

    /** One prompt-tuning step over {@code batch} rows of {@code seq} positions (soft prompt included). */
    public static MemoryEstimate trainingStep(BloomConfig c, LoadOptions o, int batch, int seq, boolean recordsAllBlocks) {
        double layer = layerActivations(c, o.dtype(), batch, seq);
        double blocks = recordsAllBlocks
                ? c.numLayers() * layer
                : c.numLayers() * (double) batch * seq * c.hiddenSize() * o.dtype().byteSize() + 2 * layer;
        double head = Math.min(HEAD_BLOCK, (double) batch * seq * c.vocabSize() * FLOAT) + 2.0 * batch * seq * c.hiddenSize() * FLOAT;
        // int8 layers multiply a dequantized copy of their weight. When every block is recorded the
        // graph keeps all of them (12·h² a layer) besides the four reused buffers (4·h² each,
        // DequantizeScratch); a recomputed block keeps none (Int8Backward), so one buffer is in use
        // at a time — counted twice, for the one being handed back while the next is taken.
        double h2 = (double) c.hiddenSize() * c.hiddenSize() * o.dtype().byteSize();
        double dequantized = o.int8().enabled() ? (recordsAllBlocks ? c.numLayers() * 12.0 * h2 + 16 * h2 : 8 * h2) : 0;
        return new MemoryEstimate(weightBytes(c, o), saturate(blocks + head + dequantized + STEP_SLACK));
    }

    /** A forward that returns the full float32 logits [B, T, V] (evaluation, the forward command). */
    public static MemoryEstimate forward(BloomConfig c, LoadOptions o, int batch, int seq) {
        double logits = (double) batch * seq * c.vocabSize() * FLOAT;
        return new MemoryEstimate(weightBytes(c, o), saturate(layerActivations(c, o.dtype(), batch, seq) + logits));
    }

    /** Generation: the prefill over {@code prompt} positions, then a KV cache growing to {@code prompt + newTokens}. */
    public static MemoryEstimate generation(BloomConfig c, LoadOptions o, int batch, int prompt, int newTokens) {
        double total = (double) prompt + newTokens;
        double cache = 2.0 * c.numLayers() * batch * total * c.hiddenSize() * o.dtype().byteSize();
        double prefill = layerActivations(c, o.dtype(), batch, prompt) + (double) batch * prompt * c.vocabSize() * FLOAT;
        return new MemoryEstimate(weightBytes(c, o), saturate(cache + prefill));
    }

    /**
     * One block's tensors alive at once during a recorded forward: hidden-size activations (layer
     * norms, the fused QKV, attention output, residuals: about 10·H per position; the MLP's 4H input,
     * GELU and output: another 12·H) and the attention scores, probabilities and bias, [B, heads, T, T]
     * each, in float32.
     */
    private static double layerActivations(BloomConfig c, DType dtype, int batch, int seq) {
        double positions = (double) batch * seq;
        return positions * 22.0 * c.hiddenSize() * dtype.byteSize() + 3.0 * positions * seq * c.numHeads() * FLOAT;
    }

    /**
     * Refuses the run when it cannot fit the memory the machine has free, naming what to lower.
     *
     * @param what  the run, for the message ("a training step of 4 × 266 positions")
     * @param lower the settings that shrink it, for the message ("virtual tokens, batch size or max length")
     */
    public void requireFits(String what, String lower) {
        long available = ProcessMemory.availableBytes();
        if (total() > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "%s needs about %s (weights %s + activations %s) but %s of memory are available; lower %s",
                    what, size(total()), size(weights), size(working), size(available), lower));
        }
    }

    public static String size(long bytes) {
        if (bytes >= 1L << 40) return String.format(Locale.ROOT, "%.1f TiB", bytes / (double) (1L << 40));
        if (bytes >= 1L << 30) return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
        return String.format(Locale.ROOT, "%.0f MiB", Math.ceil(bytes / (double) (1L << 20)));
    }

    private static long saturate(double bytes) {
        return bytes >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) bytes;
    }
}
