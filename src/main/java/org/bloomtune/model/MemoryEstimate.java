package org.bloomtune.model;

import org.bloomtune.kernels.MaskedSoftmax;
import org.bloomtune.kernels.WholeAttention;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.ProcessMemory;

import java.util.Locale;

/**
 * What a run will need in memory, worked out from the config before any weight is loaded, so an
 * impossible request (a 100,000-token soft prompt, a 2-billion-layer config) is refused with the
 * figure instead of being discovered by the kernel's OOM killer. Upper estimates: activations count
 * the tensors each stage keeps alive at once, with the allocators' rounding on top, and are checked
 * against measured peaks (ReversePassChoiceTest, GenerationMemoryTest).
 *
 * @param weights bytes of the model's weights in their loaded form
 * @param working bytes of activations, caches and logits at the peak
 */
public record MemoryEstimate(long weights, long working) {
    private static final long FLOAT = 4;
    /** The streamed head's vocabulary block (LabelledHeadLoss.budgetBytes's default). */
    private static final long HEAD_BLOCK = 256L << 20;
    /** The smallest buffer CpuCachingAllocator maps on its own (LARGE in native/cpu_caching_allocator.c). */
    private static final long ALLOCATOR_MAPPING = 256L << 10;
    /**
     * What a step adds that no tensor accounts for: oneDNN and OpenMP scratch, the JVM heap growing
     * while the step runs, and the allocator's rounding and cached blocks, which grow with the
     * tensors. Measured peaks come within a few percent of the tensors alone and move by tens of
     * MiB between runs, so the estimate carries this much on top.
     */
    private static final long STEP_SLACK = 64L << 20;
    private static final double STEP_SLACK_SHARE = 0.05;

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

    /**
     * One prompt-tuning step over {@code batch} rows of {@code seq} positions (soft prompt included):
     * what the recorded blocks keep for the reverse pass, one block's working tensors on top (the
     * block running, or its freed tensors still cached by the allocator), and the streamed head.
     * Checked against profile-step's measured peaks at several depths (ReversePassChoiceTest,
     * benchmarks/FINDINGS.md).
     */
    public static MemoryEstimate trainingStep(BloomConfig c, LoadOptions o, int batch, int seq, boolean recordsAllBlocks) {
        double recorded = recordedBlock(c, o.dtype(), batch, seq);
        double blocks = recordsAllBlocks
                ? c.numLayers() * recorded
                : c.numLayers() * (double) batch * seq * c.hiddenSize() * o.dtype().byteSize() + recorded;
        // int8 layers multiply a dequantized copy of their weight. When every block is recorded the
        // graph keeps all of them (12·h² a layer) besides the four reused buffers (4·h² each,
        // DequantizeScratch); a recomputed block keeps none (Int8Backward), so one buffer is in use
        // at a time — counted twice, for the one being handed back while the next is taken.
        double h2 = (double) c.hiddenSize() * c.hiddenSize() * o.dtype().byteSize();
        double dequantized = o.int8().enabled() ? (recordsAllBlocks ? c.numLayers() * 12.0 * h2 + 16 * h2 : 8 * h2) : 0;
        double working = blocks + layerActivations(c, o.dtype(), batch, seq, true, true) + head(c, o, batch, seq) + dequantized;
        return new MemoryEstimate(weightBytes(c, o), saturate(working * (1 + STEP_SLACK_SHARE) + STEP_SLACK));
    }

    /**
     * What autograd keeps of one block until the reverse pass reaches it, the weights being frozen
     * (a product with a frozen weight keeps nothing of its input): per position the block's input
     * and the attention's output (the two layer norms' inputs), query, key and value (their
     * product's operands; the fused QKV where the native attention takes it), the GELU's input
     * (4H), and, with libtorch's chain, the attention probabilities [heads, S] — float32 for the
     * softmax's own reverse and, below float32, once more in the compute dtype for the product with
     * the values. The native attention keeps none: its backward forms them again.
     */
    private static double recordedBlock(BloomConfig c, DType dtype, int batch, int seq) {
        double positions = (double) batch * seq;
        double hidden = positions * c.hiddenSize() * dtype.byteSize();
        double kept = 5 * resident(hidden) + resident(4 * hidden);
        if (wholeAttention(dtype)) return kept;
        double probabilities = positions * c.numHeads() * seq;
        kept += resident(probabilities * Math.max(FLOAT, dtype.byteSize()));
        return dtype.byteSize() < FLOAT ? kept + resident(probabilities * dtype.byteSize()) : kept;
    }

    /** Whether a call without cached keys runs its attention by {@link WholeAttention}, scores and probabilities in per-thread scratch. */
    private static boolean wholeAttention(DType dtype) {
        return WholeAttention.available(dtype.scalarType());
    }

    /**
     * A kept tensor's resident bytes. One under the caching allocator's own-mapping size goes to
     * glibc's heap, where the block's freed temporaries between kept tensors stay resident too:
     * counted two and a half times (2.3 measured at hidden 256 in bfloat16: benchmarks/FINDINGS.md).
     */
    private static double resident(double bytes) {
        return bytes < ALLOCATOR_MAPPING ? 2.5 * bytes : bytes;
    }

    /**
     * The streamed head's vocabulary block (LabelledHeadLoss.columns: a float32 block fills the
     * budget; a bfloat16 one takes 2 of the 8 bytes charged for each logit) and its [K, H] float32
     * vectors: the accumulated gradient, the targets' rows, the hidden states and their gradient.
     */
    private static double head(BloomConfig c, LoadOptions o, int batch, int seq) {
        double positions = (double) batch * seq;
        long budget = o.headBlockBytes() > 0 ? o.headBlockBytes() : o.int8().enabled() ? HEAD_BLOCK / 4 : HEAD_BLOCK;
        double block = Math.min(budget, positions * c.vocabSize() * FLOAT);
        if (o.dtype() == DType.BF16 && !o.int8().enabled()) block /= 4;
        return block + 4.0 * positions * c.hiddenSize() * FLOAT;
    }

    /** A forward that returns the full float32 logits [B, T, V] (evaluation, the forward command). */
    public static MemoryEstimate forward(BloomConfig c, LoadOptions o, int batch, int seq) {
        double logits = (double) batch * seq * c.vocabSize() * FLOAT;
        return new MemoryEstimate(weightBytes(c, o), saturate(layerActivations(c, o.dtype(), batch, seq, false, false) + logits));
    }

    /**
     * Generation: the prefill over {@code prompt} positions, then a KV cache growing to {@code prompt
     * + newTokens} (rounded up to whole lines of positions, as the cache allocates). Only the last
     * position's logits [B, V] are formed (and copied out for the picker).
     */
    public static MemoryEstimate generation(BloomConfig c, LoadOptions o, int batch, int prompt, int newTokens) {
        double total = KvCache.wholeLines((long) prompt + newTokens);
        double cache = 2.0 * c.numLayers() * batch * total * c.hiddenSize() * o.dtype().byteSize();
        // the prefill's eager attention runs by the whole kernel (BloomAttention.prefill)
        double prefill = layerActivations(c, o.dtype(), batch, prompt, false, o.attention() == AttentionKernel.EAGER)
                + 2.0 * batch * c.vocabSize() * FLOAT;
        return new MemoryEstimate(weightBytes(c, o), saturate((cache + prefill) * (1 + STEP_SLACK_SHARE) + STEP_SLACK));
    }

    /**
     * One block's tensors alive at once: hidden-size activations (layer norms, the fused QKV,
     * attention output, residuals: about 10·H per position; the MLP's 4H input, GELU and output:
     * another 12·H) and the attention's [B, heads, T, S] tensors: where the whole attention kernel
     * runs ({@code whole}: a recorded step, a generation's prefill) only its per-thread scratch (a
     * few [S, S] of one head at a time); else in float32 and wider the bias, scores and
     * probabilities; in bfloat16, where the native kernels take them, the scores and probabilities
     * in bfloat16 (a prefill behind cached keys); else libtorch's chain through float32.
     */
    private static double layerActivations(BloomConfig c, DType dtype, int batch, int seq, boolean recording, boolean whole) {
        double positions = (double) batch * seq;
        double b = dtype.byteSize();
        double hidden = positions * 22.0 * c.hiddenSize() * b;
        if (whole && wholeAttention(dtype)) {
            // the kernel's own count of its per-thread scratch (native/attention_*.c), on every core
            long perThread = WholeAttention.scratchBytesPerThread(dtype.scalarType(), seq, c.hiddenSize() / c.numHeads());
            return hidden + (double) perThread * Runtime.getRuntime().availableProcessors();
        }
        double attention = b >= FLOAT ? 3 * b
                : dtype != DType.BF16 || !MaskedSoftmax.available() ? 3 * FLOAT + 2 * b
                : recording ? FLOAT + 2 * b : 2 * b;
        return hidden + positions * seq * c.numHeads() * attention;
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
