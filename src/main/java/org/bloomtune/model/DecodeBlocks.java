package org.bloomtune.model;

import org.bloomtune.kernels.DecodeBlocksKernel;
import org.bloomtune.kernels.RowKernel;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A decode step's blocks — one new position for each of up to eight rows, eager attention over the
 * KV cache — run by {@link DecodeBlocksKernel} in one native call per thread instead of block by
 * block from Java. Applies where every piece has its native form: each linear's {@link Linear#rowKernel}
 * (the kernel its Java path would call), {@link org.bloomtune.kernels.DecodeAttention} for the cache (its buffers checked each step by
 * {@link DecodeBlocksKernel#runIfFits}), float32 or bfloat16
 * layer norms; otherwise the caller runs the blocks as before. For greedy decoding the step goes
 * on through ln_f and the lm_head to each row's argmax ({@link #argmax}) where the word embedding's
 * lm_head has its row kernel too ({@link WordEmbedding#rowKernel}). The weights' table is built once
 * per row count and kept; a copy with the cache buffers' addresses written in, and the scratch,
 * are kept from step to step while the cache keeps its buffers.
 */
final class DecodeBlocks implements AutoCloseable {
    private final BloomConfig config;
    private final List<BloomBlock> blocks;
    private final LayerNorm lnF;
    private final WordEmbedding wordEmbeddings;
    private final Arena arena = Arena.ofShared();
    private final ConcurrentMap<Long, Optional<DecodeBlocksKernel.Table>> tables = new ConcurrentHashMap<>();
    private volatile boolean enabled = true;
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong argmaxSteps = new AtomicLong();
    private final AtomicReference<Kept> kept = new AtomicReference<>();

    DecodeBlocks(BloomConfig config, List<BloomBlock> blocks, LayerNorm lnF, WordEmbedding wordEmbeddings) {
        this.config = config;
        this.blocks = blocks;
        this.lnF = lnF;
        this.wordEmbeddings = wordEmbeddings;
    }

    /** How a prepared step is launched: its result, or null where the step's tensors do not fit (nothing written). */
    @FunctionalInterface
    private interface Launch<R> {
        R run(DecodeBlocksKernel.Prepared prepared, DecodeBlocksKernel.Shape shape, Tensor state);
    }

    /** Turns the native step off or on (tests compare it with the block-by-block path). */
    void enable(boolean on) { enabled = on; }

    /** Decode steps run natively so far. */
    long steps() { return steps.get(); }

    /** Of {@link #steps}, those that went on to the argmax. */
    long argmaxSteps() { return argmaxSteps.get(); }

    /**
     * The last block's output [B, 1, H] for the first block's input {@code hidden} [B, 1, H], the
     * cache extended by the step's keys and values as the blocks would extend it (the caller advances
     * its length); null where the native step does not apply, nothing then having been written.
     */
    Tensor forward(Tensor hidden, AttentionContext ctx, KvCache cache) {
        return step(hidden, ctx, cache, (prepared, shape, state) ->
                DecodeBlocksKernel.runIfFits(prepared, shape, state, ctx.alibi(), ctx.mask()) ? state.view(shape.rows(), 1, shape.hidden()) : null);
    }

    /**
     * Each row's greedy next token — the argmax of ln_f and the lm_head over the last block's
     * output, with torch.argmax's rules — for the first block's input {@code hidden} [B, 1, H], the
     * cache extended as by {@link #forward}; null where the native step or its head does not apply,
     * nothing then having been written.
     */
    long[] argmax(Tensor hidden, AttentionContext ctx, KvCache cache) {
        Optional<DecodeBlocksKernel.Table> known = hidden.dim() == 3 ? tables.get(hidden.size(0)) : null;
        if (known != null && (known.isEmpty() || !known.get().hasHead())) return null;     // no head for these rows: the caller's path at once
        long[] picked = step(hidden, ctx, cache, (prepared, shape, state) ->
                DecodeBlocksKernel.argmaxIfFits(prepared, shape, state, ctx.alibi(), ctx.mask()));
        if (picked != null) argmaxSteps.incrementAndGet();
        return picked;
    }

    private <R> R step(Tensor hidden, AttentionContext ctx, KvCache cache, Launch<R> launch) {
        if (!enabled || !DecodeBlocksKernel.available() || cache == null || !takes(hidden, ctx)) return null;
        long rows = hidden.size(0);
        long h = config.hiddenSize();
        boolean bf16 = hidden.scalar_type().value == ScalarType.BFloat16.value;
        Kept step = take(cache, rows, bf16 ? ScalarType.BFloat16 : ScalarType.Float);
        if (step == null) return null;
        cache.populateAhead(1);
        Tensor state = hidden.reshape(rows, h).contiguous().clone();
        DecodeBlocksKernel.Shape shape = new DecodeBlocksKernel.Shape(rows, h, config.numHeads(), config.headDim(), cache.length(),
                step.prepared.capacity(), bf16, blocks.getFirst().residualFromLayernorm(), config.layerNormEpsilon());
        R result;
        try {
            result = launch.run(step.prepared, shape, state);
        } finally {
            keep(step);
        }
        if (result != null) steps.incrementAndGet();
        return result;
    }

    /**
     * The kept step if it serves {@code cache} for these rows in {@code dtype}, else a
     * new one; null where some piece has no native form. The caller's while it runs (another thread
     * builds its own meanwhile); {@link #keep} hands it back.
     */
    private Kept take(KvCache cache, long rows, ScalarType dtype) {
        Kept step = kept.getAndSet(null);
        if (step != null && step.serves(cache, rows, dtype == ScalarType.BFloat16)) return step;
        if (step != null) step.close();
        return prepare(cache, rows, dtype);
    }

    private void keep(Kept step) {
        Kept displaced = kept.getAndSet(step);
        if (displaced != null) displaced.close();
    }

    /**
     * The native step of {@code cache} for {@code rows} rows in {@code dtype} (float32 or bfloat16),
     * held by one caller until closed, for a greedy loop whose input never becomes a tensor
     * ({@link GreedySteps}); null where the step or its head does not apply.
     */
    Held hold(KvCache cache, long rows, ScalarType dtype) {
        if (!enabled || !DecodeBlocksKernel.available() || cache == null || rows < 1 || rows > DecodeBlocksKernel.MAX_ROWS
                || (dtype != ScalarType.Float && dtype != ScalarType.BFloat16)) return null;
        Optional<DecodeBlocksKernel.Table> known = tables.get(rows);
        if (known != null && (known.isEmpty() || !known.get().hasHead())) return null;
        Kept step = take(cache, rows, dtype);
        if (step == null) return null;
        if (!step.prepared.hasHead()) {
            keep(step);
            return null;
        }
        return new Held(step);
    }

    /** A kept step one caller runs from step to step: each runs the blocks and the head over the caller's memory. */
    final class Held implements AutoCloseable {
        private Kept step;

        private Held(Kept step) { this.step = step; }

        /**
         * Each row's greedy next token for the embeddings' layer norm {@code hidden} [rows, H], with
         * the step's ALiBi bias and mask as {@link DecodeBlocksKernel#argmax} takes them; the cache
         * extended by the step's keys and values (the caller advances its length). A cache whose
         * buffers are full gets room first, as {@link #argmax(Tensor, AttentionContext, KvCache)}'s step would.
         */
        long[] argmax(MemorySegment hidden, MemorySegment alibi, MemorySegment masked) {
            if (step == null) throw new IllegalStateException("the decode step was handed back");
            KvCache cache = step.cache;
            long rows = step.prepared.rows();
            boolean bf16 = step.prepared.bf16();
            if (!step.serves(cache, rows, bf16)) {
                step.close();
                step = prepare(cache, rows, bf16 ? ScalarType.BFloat16 : ScalarType.Float);
                if (step == null) throw new IllegalStateException("the native decode step no longer applies to the KV cache");
            }
            cache.populateAhead(1);
            DecodeBlocksKernel.Shape shape = new DecodeBlocksKernel.Shape(rows, config.hiddenSize(), config.numHeads(), config.headDim(),
                    cache.length(), step.prepared.capacity(), bf16, blocks.getFirst().residualFromLayernorm(), config.layerNormEpsilon());
            long[] picked = DecodeBlocksKernel.argmax(step.prepared, shape, hidden, alibi, masked);
            steps.incrementAndGet();
            argmaxSteps.incrementAndGet();
            return picked;
        }

        @Override
        public void close() {
            if (step == null) return;
            keep(step);
            step = null;
        }
    }

    /**
     * A step prepared for {@code cache}: its buffers given room for this step's position (as the
     * Java path reserves them), fresh scratch, the blocks' table for these rows; null where some
     * piece has no native form. Its tensors are the cache's and the step's own; the views and
     * options made on the way belong to a scope of its own.
     */
    private Kept prepare(KvCache cache, long rows, ScalarType dtype) {
        try (PointerScope scope = new PointerScope(); TensorOptions options = new TensorOptions(dtype)) {
            return prepare(options, cache, rows);
        }
    }

    private Kept prepare(TensorOptions options, KvCache cache, long rows) {
        Optional<DecodeBlocksKernel.Table> known = tables.get(rows);
        if (known != null && known.isEmpty()) return null;
        Tensor[] scratch = DecodeBlocksKernel.scratch(rows, config.hiddenSize(), options);
        for (Tensor t : scratch) Tensors.escape(t);
        DecodeBlocksKernel.Table layers = tables.computeIfAbsent(rows, r -> Optional.ofNullable(table(DecodeBlocksKernel.oneThreadsScratch(scratch, rows)))).orElse(null);
        DecodeBlocksKernel.Prepared prepared = null;
        if (layers != null) {
            List<Tensor[]> buffers = new ArrayList<>();
            for (int layer = 0; layer < blocks.size(); layer++) {
                buffers.add(cache.buffersWithRoom(layer, rows * config.numHeads(), config.headDim(), options, 1));
            }
            prepared = DecodeBlocksKernel.prepareIfFits(layers, rows, config.numHeads(), config.headDim(), buffers.getFirst()[0].size(2), buffers, scratch);
        }
        if (prepared == null) {
            for (Tensor t : scratch) t.close();
            return null;
        }
        return new Kept(cache, cache.version(), scratch, prepared);
    }

    /** A prepared step, the cache and buffer version whose addresses it holds, and the scratch it owns. */
    private record Kept(KvCache cache, long version, Tensor[] scratch, DecodeBlocksKernel.Prepared prepared) implements AutoCloseable {
        /** Whether it may run the next step of {@code cache}: the same buffers, rows and dtype, and room for one more position. */
        boolean serves(KvCache c, long rows, boolean bf16) {
            return c == cache && c.version() == version && rows == prepared.rows() && bf16 == prepared.bf16() && c.length() + 1 <= prepared.capacity();
        }

        @Override
        public void close() {
            prepared.close();
            for (Tensor t : scratch) t.close();
        }
    }

    /** One new position per row, float32 or bfloat16 contiguous CPU rows outside autograd, eager attention without a prefix. */
    private static boolean takes(Tensor hidden, AttentionContext ctx) {
        int type = hidden.scalar_type().value;
        return hidden.dim() == 3 && hidden.size(1) == 1 && hidden.size(0) >= 1 && hidden.size(0) <= DecodeBlocksKernel.MAX_ROWS
                && (type == ScalarType.Float.value || type == ScalarType.BFloat16.value) && hidden.is_cpu() && !hidden.requires_grad()
                && ctx.kernel() == AttentionKernel.EAGER && ctx.prefix() == null;
    }

    /** The blocks' table for these rows, or null when some piece has no native form. */
    private DecodeBlocksKernel.Table table(Tensor[] scratch) {
        List<DecodeBlocksKernel.Layer> layers = new ArrayList<>();
        for (BloomBlock b : blocks) {
            LayerNorm ln1 = b.inputLayernorm();
            LayerNorm ln2 = b.postAttentionLayernorm();
            if (!normTakes(ln1, scratch[0]) || !normTakes(ln2, scratch[0]) || b.residualFromLayernorm() != blocks.getFirst().residualFromLayernorm()) return null;
            RowKernel qkv = b.selfAttention().queryKeyValue().rowKernel(scratch[0]);
            RowKernel dense = b.selfAttention().dense().rowKernel(scratch[2]);
            RowKernel hTo4h = b.mlp().denseHTo4h().rowKernel(scratch[4]);
            RowKernel h4ToH = b.mlp().dense4hToH().rowKernel(scratch[5]);
            if (qkv == null || dense == null || hTo4h == null || h4ToH == null) return null;
            layers.add(new DecodeBlocksKernel.Layer(ln1.weight(), ln1.bias(), ln2.weight(), ln2.bias(), qkv, dense, hTo4h, h4ToH));
        }
        RowKernel lmHead = normTakes(lnF, scratch[0]) ? wordEmbeddings.rowKernel(scratch[0]) : null;
        return DecodeBlocksKernel.layers(arena, layers, lmHead == null ? null : new DecodeBlocksKernel.Head(lnF.weight(), lnF.bias(), lmHead));
    }

    private boolean normTakes(LayerNorm ln, Tensor x) {
        for (Tensor t : new Tensor[]{ln.weight(), ln.bias()}) {
            if (t.scalar_type().value != x.scalar_type().value || !t.is_contiguous() || !t.is_cpu() || t.dim() != 1
                    || t.size(0) != config.hiddenSize()) return false;
        }
        return ln.eps() == config.layerNormEpsilon();
    }

    @Override
    public void close() {
        Kept step = kept.getAndSet(null);
        if (step != null) step.close();
        arena.close();
    }
}
