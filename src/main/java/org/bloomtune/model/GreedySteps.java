package org.bloomtune.model;

import org.bloomtune.kernels.GreedyInput;
import org.bloomtune.kernels.RowGather;
import org.bloomtune.tensor.NativeMemory;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Greedy decoding's steps after a prefill, with each step's input kept in native memory from one
 * step to the next: the fed-back ids' embedding rows gathered there, then their layer norm and a
 * key more in the ALiBi bias and the mask in one call ({@link GreedyInput}), and the blocks, ln_f
 * and the lm_head's argmax run by the native decode step ({@link DecodeBlocks}) — no tensor made
 * and no libtorch call between two steps. Between two steps' kernels a decode step through
 * {@link BloomModel#nextTokenArgmax} spends its time making and checking the few tensors of its
 * input, after the weights have pushed everything else out of the caches, long enough for the
 * kernels' helper thread to park (benchmarks/FINDINGS.md). The tokens and their rounding are that
 * path's, but for the embeddings' layer norm, which is the blocks' own (native/decode_blocks.c).
 * One thread uses a session; {@link #close} hands the decode step back to the model.
 */
public final class GreedySteps implements AutoCloseable {
    private final KvCache cache;
    private final DecodeBlocks.Held step;
    private final RowGather gather;
    private final MemorySegment normWeight, normBias;
    private final double eps;
    private final int rows, heads;
    private final long hidden, vocabulary, maxPositions, element;
    private final boolean bf16;
    private final float[] slopes;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment ids, state, alibi, masked, slopeValues;
    private final MemorySegment seen;   // int64 [rows]: each row's unmasked keys so far, the next key's ALiBi position
    private long positions;             // keys the ALiBi bias and the mask hold

    private GreedySteps(BloomConfig config, KvCache cache, DecodeBlocks.Held step, RowGather gather, LayerNorm norm, boolean bf16, int rows,
                        long maxPositions) {
        this.cache = cache;
        this.step = step;
        this.gather = gather;
        this.normWeight = NativeMemory.of(norm.weight());
        this.normBias = NativeMemory.of(norm.bias());
        this.eps = norm.eps();
        this.rows = rows;
        this.heads = config.numHeads();
        this.hidden = config.hiddenSize();
        this.vocabulary = config.vocabSize();
        this.maxPositions = maxPositions;
        this.bf16 = bf16;
        this.element = bf16 ? 2 : 4;
        this.slopes = Alibi.slopes(heads);
        this.slopeValues = arena.allocateFrom(ValueLayout.JAVA_FLOAT, slopes);
        this.seen = arena.allocate(ValueLayout.JAVA_LONG, rows);
        this.ids = arena.allocate(ValueLayout.JAVA_LONG, rows);
        this.state = arena.allocate(rows * hidden * element, 64);
        this.alibi = arena.allocate(rows * heads * maxPositions * element, 64);
        this.masked = arena.allocate(rows * maxPositions, 64);
    }

    /**
     * A session for {@code cache} after a prefill whose 2-D mask's values are {@code mask} [rows,
     * columns] (one column per cached position), for steps up to {@code maxPositions} keys; null
     * where a piece has no native form (the caller steps through {@link BloomModel#nextTokenArgmax}).
     */
    static GreedySteps open(BloomConfig config, DecodeBlocks blocks, WordEmbedding embedding, LayerNorm norm, boolean bf16, KvCache cache,
                            long[] mask, int rows, long columns, long maxPositions) {
        if (rows < 1 || mask.length != rows * columns || columns != cache.length() || maxPositions <= columns) return null;
        float[] positions = DecodeContext.positions(mask, rows, columns);
        RowGather gather = embedding.rowGather();
        if (positions == null || gather == null || !plain(norm, config.hiddenSize(), bf16)) return null;
        DecodeBlocks.Held step = blocks.hold(cache, rows, bf16 ? ScalarType.BFloat16 : ScalarType.Float);
        if (step == null) return null;
        GreedySteps session = new GreedySteps(config, cache, step, gather, norm, bf16, rows, maxPositions);
        session.fill(mask, positions, columns);
        return session;
    }

    /**
     * Feeds each row's token {@code next} (a finished row's pad id too) at the next position: each
     * row's greedy next token, the cache extended by one position.
     */
    public long[] next(long[] next) {
        if (next.length != rows) throw new IllegalArgumentException(next.length + " tokens for " + rows + " rows");
        if (positions + 1 > maxPositions) throw new IllegalStateException("the session was opened for " + maxPositions + " positions");
        for (int b = 0; b < rows; b++) {
            if (next[b] < 0 || next[b] >= vocabulary) throw new IllegalArgumentException("input_ids must lie in [0, " + vocabulary + "), found " + next[b]);
            ids.setAtIndex(ValueLayout.JAVA_LONG, b, next[b]);
        }
        try {
            gather.rows(ids, rows, state);
        } catch (Throwable t) {
            throw new IllegalStateException("the word embedding's native gather failed", t);
        }
        GreedyInput.prepare(state, normWeight, normBias, rows, hidden, eps, bf16, alibi, masked, heads, positions, slopeValues, seen);
        positions++;
        long[] picked = step.argmax(state, alibi.asSlice(0, rows * heads * positions * element), masked.asSlice(0, rows * positions));
        cache.advance(1);
        return picked;
    }

    /** The last step's last block output [rows, H] as floats — what ln_f and the lm_head read (for checks). */
    float[] lastHidden() {
        float[] out = new float[Math.toIntExact(rows * hidden)];
        for (int i = 0; i < out.length; i++) {
            out[i] = bf16 ? Float.intBitsToFloat(state.getAtIndex(ValueLayout.JAVA_SHORT, i) << 16) : state.getAtIndex(ValueLayout.JAVA_FLOAT, i);
        }
        return out;
    }

    /**
     * The bias and mask of the prefill's keys, laid out as a step of that many keys reads them: made
     * in Java arrays and copied in bulk, since a long batch's prompt has a million bias values and an
     * access to native memory at a time runs interpreted in a generation's first steps.
     */
    private void fill(long[] mask, float[] keyPositions, long columns) {
        positions = columns;
        float[] bias = DecodeContext.bias(keyPositions, rows, columns, slopes);
        byte[] maskedKeys = new byte[mask.length];
        long[] unmasked = new long[rows];
        for (int at = 0; at < mask.length; at++) {
            unmasked[(int) (at / columns)] += mask[at];
            maskedKeys[at] = (byte) (mask[at] == 0 ? 1 : 0);
        }
        if (bf16) {
            short[] rounded = new short[bias.length];
            for (int i = 0; i < bias.length; i++) rounded[i] = bfloat16(bias[i]);
            MemorySegment.copy(rounded, 0, alibi, ValueLayout.JAVA_SHORT, 0, rounded.length);
        } else {
            MemorySegment.copy(bias, 0, alibi, ValueLayout.JAVA_FLOAT, 0, bias.length);
        }
        MemorySegment.copy(maskedKeys, 0, masked, ValueLayout.JAVA_BYTE, 0, maskedKeys.length);
        MemorySegment.copy(unmasked, 0, seen, ValueLayout.JAVA_LONG, 0, rows);
    }

    /** A finite float rounded to bfloat16's bits, to nearest with ties to even, as libtorch casts the float32 product. */
    static short bfloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    private static boolean plain(LayerNorm norm, long h, boolean bf16) {
        int type = (bf16 ? ScalarType.BFloat16 : ScalarType.Float).value;
        for (Tensor t : new Tensor[]{norm.weight(), norm.bias()}) {
            if (t.scalar_type().value != type || !t.is_contiguous() || !t.is_cpu() || t.dim() != 1 || t.size(0) != h) return false;
        }
        return true;
    }

    @Override
    public void close() {
        step.close();
        arena.close();
    }
}
