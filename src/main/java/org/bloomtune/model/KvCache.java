package org.bloomtune.model;

import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.NativeMemory;
import org.bloomtune.tensor.ResidentPages;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Keys and values of the positions already processed, per layer, so that decoding one token costs
 * one position's work. Keys are kept as {@code [B*heads, head_dim, S]} (ready for the score
 * product) and values as {@code [B*heads, S, head_dim]}, as HF's BLOOM does, in buffers with room
 * for more positions. The cache owns its tensors; {@link #close} frees them.
 */
public final class KvCache implements AutoCloseable {
    /** Positions a new buffer holds beyond what is needed now: a short generation never reallocates. */
    private static final long SPARE = 256;
    /**
     * Positions beyond the first call's that an expected length may reserve at once: a generation
     * asking for far more tokens than it will likely produce (it stops at end of sequence) grows by
     * doubling instead of holding address space for all of them.
     */
    static final long MAX_RESERVED_AHEAD = 4096;
    /**
     * Capacities are rounded up to a multiple of this many positions: each key row (one per head_dim
     * element, capacity positions long) then starts on a 64-byte line in bfloat16 and float32 alike,
     * and the decode kernel's vector loads of a row never straddle two lines.
     */
    static final long CAPACITY_MULTIPLE = 32;
    /**
     * Positions past the ones about to be written whose pages are made resident together. On 4 KiB
     * pages a value row of head_dim floats takes a fresh page every sixteen positions, in every
     * (row, head) pair of every layer at the same step; asking for a run of them in one call costs
     * less than faulting them in one by one (benchmarks/FINDINGS.md), and the cache stays resident
     * only this far past what is written.
     */
    static final long POPULATED_AHEAD = 64;

    private final Tensor[] keys;
    private final Tensor[] values;
    private final long[] resident;       // per layer: positions of the buffers known resident
    private final long expectedPositions;
    private long length;
    private long version;

    /** A cache whose first buffers hold the first call's positions and {@value #SPARE} more. */
    public KvCache(int numLayers) {
        this(numLayers, 0);
    }

    /**
     * A cache sized for {@code expectedPositions} in all — a generation's prefill plus the tokens it
     * may add — so it never copies itself to grow within them (up to {@value #MAX_RESERVED_AHEAD}
     * beyond the first call's positions; past that it doubles).
     */
    public KvCache(int numLayers, long expectedPositions) {
        if (expectedPositions < 0) throw new IllegalArgumentException("expectedPositions is " + expectedPositions);
        this.keys = new Tensor[numLayers];
        this.values = new Tensor[numLayers];
        this.resident = new long[numLayers];
        this.expectedPositions = expectedPositions;
    }

    /** Positions cached so far (the same for every layer once a forward call has finished). */
    public long length() { return length; }

    /**
     * Changes whenever a buffer is replaced or released: what holds a buffer's address (a prepared
     * native decode step) may keep it only while this stays the same.
     */
    long version() { return version; }

    /**
     * Writes this call's keys and values for {@code layer} behind the cached ones and returns the
     * full [key, value] as views. The buffers are allocated with room to spare and doubled when
     * full, so a decode step writes one position instead of copying the whole cache (as growing
     * by {@code cat} would). While autograd records, the cache concatenates instead: an in-place
     * write would break the graph.
     */
    Tensor[] append(int layer, Tensor key, Tensor value) {
        if (key.requires_grad() || value.requires_grad()) return appendByCat(layer, key, value);
        long added = key.size(2);
        long needed = length + added;
        reserve(layer, key.size(0), key.size(1), key.options(), added);
        keys[layer].narrow(2, length, added).copy_(key);
        values[layer].narrow(1, length, added).copy_(value);
        return new Tensor[]{keys[layer].narrow(2, 0, needed), values[layer].narrow(1, 0, needed)};
    }

    /**
     * {@code layer}'s whole key [B*heads, head_dim, capacity] and value [B*heads, capacity, head_dim]
     * buffers, with room for {@code added} positions after the cached ones, for a kernel that writes
     * them in place (the caller then calls {@link #advance} as after {@link #append}).
     */
    Tensor[] buffersWithRoom(int layer, long rows, long headDim, TensorOptions options, long added) {
        reserve(layer, rows, headDim, options, added);
        return new Tensor[]{keys[layer], values[layer]};
    }

    /** Positions the buffers hold before they must grow (0 before the first call). */
    long capacity() { return keys[0] == null ? 0 : keys[0].size(2); }

    /** Grows {@code layer}'s buffers (with room to spare) when {@code added} more positions would not fit. */
    private void reserve(int layer, long rows, long headDim, TensorOptions options, long added) {
        long needed = length + added;
        if (keys[layer] == null) grow(layer, rows, headDim, options, firstCapacity(needed));
        else if (keys[layer].size(2) < needed) grow(layer, rows, headDim, options, Math.max(needed + SPARE, 2 * needed));
        populateAhead(layer, needed);
    }

    /**
     * Makes every layer's buffers resident for {@code added} more positions and {@value
     * #POPULATED_AHEAD} beyond, for a kernel about to write them in place (within the capacity).
     */
    void populateAhead(long added) {
        for (int layer = 0; layer < keys.length; layer++) {
            if (keys[layer] != null) populateAhead(layer, length + added);
        }
    }

    private void populateAhead(int layer, long needed) {
        if (needed <= resident[layer] || !ResidentPages.supported() || !keys[layer].is_cpu()) return;
        long capacity = keys[layer].size(2);
        long to = Math.min(capacity, needed + POPULATED_AHEAD);
        long from = resident[layer];
        long element = keys[layer].element_size();
        long pairs = keys[layer].size(0);
        long headDim = keys[layer].size(1);
        ResidentPages.populateRows(NativeMemory.of(keys[layer]), pairs * headDim, capacity * element, from * element, to * element);
        long position = headDim * element;
        ResidentPages.populateRows(NativeMemory.of(values[layer]), pairs, capacity * position, from * position, to * position);
        resident[layer] = to;
    }

    private long firstCapacity(long needed) {
        if (expectedPositions < needed) return needed + SPARE;
        return Math.min(expectedPositions, needed + MAX_RESERVED_AHEAD);
    }

    /** Replaces {@code layer}'s buffers by ones of at least {@code positions} positions holding the cached ones. */
    private void grow(int layer, long rows, long headDim, TensorOptions options, long positions) {
        long capacity = wholeLines(positions);
        try (PointerScope scope = new PointerScope()) {
            Tensor k;
            Tensor v;
            try (CpuCachingAllocator.SmallPages reserved = CpuCachingAllocator.smallPages()) {
                k = torch.empty(new long[]{rows, headDim, capacity}, options, new MemoryFormatOptional());
                v = torch.empty(new long[]{rows, capacity, headDim}, options, new MemoryFormatOptional());
            }
            long copied = keys[layer] == null ? 0 : length;
            if (copied > 0) {
                k.narrow(2, 0, length).copy_(keys[layer].narrow(2, 0, length));
                v.narrow(1, 0, length).copy_(values[layer].narrow(1, 0, length));
            }
            replace(layer, Tensors.escape(k), Tensors.escape(v));
            resident[layer] = copied;
        }
    }

    /** {@code positions} rounded up to a multiple of {@link #CAPACITY_MULTIPLE}: the capacity a buffer for them gets. */
    static long wholeLines(long positions) {
        return (positions + CAPACITY_MULTIPLE - 1) / CAPACITY_MULTIPLE * CAPACITY_MULTIPLE;
    }

    private Tensor[] appendByCat(int layer, Tensor key, Tensor value) {
        Tensor fullKey = keys[layer] == null ? key : torch.cat(new TensorVector(cached(keys[layer], 2), key), 2);
        Tensor fullValue = values[layer] == null ? value : torch.cat(new TensorVector(cached(values[layer], 1), value), 1);
        replace(layer, Tensors.escape(fullKey), Tensors.escape(fullValue));
        return new Tensor[]{fullKey, fullValue};
    }

    /** The cached positions of a buffer along its position axis. */
    private Tensor cached(Tensor buffer, int axis) {
        return buffer.size(axis) == length ? buffer : buffer.narrow(axis, 0, length);
    }

    /** Shrinks every buffer to exactly the cached positions (contiguous), before rows are rearranged. */
    private void compact() {
        if (keys[0] == null) return;
        try (PointerScope scope = new PointerScope()) {
            for (int layer = 0; layer < keys.length; layer++) {
                if (keys[layer].size(2) == length) continue;
                replace(layer, Tensors.escape(keys[layer].narrow(2, 0, length).contiguous()),
                        Tensors.escape(values[layer].narrow(1, 0, length).contiguous()));
            }
        }
    }

    /** Called by the model once every layer has appended {@code positions} new positions. */
    void advance(long positions) { length += positions; }

    /**
     * Keeps batch rows {@code rows} (in that order) and drops the others — a continuous batch
     * letting finished rows go. Rows are blocks of {@code numHeads} along the first dimension.
     */
    public void keepRows(long[] rows, int numHeads) {
        if (keys[0] == null) throw new IllegalStateException("the cache is empty");
        compact();
        long batch = keys[0].size(0) / numHeads;
        long[] index = new long[rows.length * numHeads];
        for (int r = 0; r < rows.length; r++) {
            if (rows[r] < 0 || rows[r] >= batch) throw new IllegalArgumentException("row " + rows[r] + " is outside [0, " + batch + ")");
            for (int h = 0; h < numHeads; h++) index[r * numHeads + h] = rows[r] * numHeads + h;
        }
        try (PointerScope scope = new PointerScope()) {
            Tensor at = Tensors.fromLongs(index, index.length).to(keys[0].device(), ScalarType.Long);
            for (int layer = 0; layer < keys.length; layer++) {
                replace(layer, Tensors.escape(keys[layer].index_select(0, at)), Tensors.escape(values[layer].index_select(0, at)));
            }
        }
    }

    /**
     * Appends {@code other}'s rows after this cache's rows (a continuous batch taking in newly
     * prefilled rows). The shorter of the two is padded on the left with zeros, which the caller
     * masks out; {@code other} is emptied. Returns the columns of left padding added to
     * [this, other] rows.
     */
    public long[] appendRows(KvCache other) {
        if (other.keys.length != keys.length) throw new IllegalArgumentException("caches of different depths");
        if (other.keys[0] == null) throw new IllegalArgumentException("the appended cache is empty");
        compact();
        other.compact();
        if (keys[0] == null) {
            for (int layer = 0; layer < keys.length; layer++) {
                replace(layer, other.keys[layer], other.values[layer]);
                other.keys[layer] = null;
                other.values[layer] = null;
            }
            other.version++;
            length = other.length;
            other.length = 0;
            return new long[]{0, 0};
        }
        long longest = Math.max(length, other.length);
        long[] padding = {longest - length, longest - other.length};
        try (PointerScope scope = new PointerScope()) {
            for (int layer = 0; layer < keys.length; layer++) {
                Tensor key = torch.cat(new TensorVector(padKeys(keys[layer], padding[0]), padKeys(other.keys[layer], padding[1])), 0);
                Tensor value = torch.cat(new TensorVector(padValues(values[layer], padding[0]), padValues(other.values[layer], padding[1])), 0);
                replace(layer, Tensors.escape(key), Tensors.escape(value));
            }
        }
        length = longest;
        other.close();
        return padding;
    }

    /** Drops the first {@code positions} positions of every row (padding no row needs any longer). */
    public void dropFront(long positions) {
        if (positions <= 0) return;
        if (positions > length) throw new IllegalArgumentException("cannot drop " + positions + " of " + length + " positions");
        compact();
        try (PointerScope scope = new PointerScope()) {
            for (int layer = 0; layer < keys.length; layer++) {
                replace(layer, Tensors.escape(keys[layer].narrow(2, positions, length - positions).contiguous()),
                        Tensors.escape(values[layer].narrow(1, positions, length - positions).contiguous()));
            }
        }
        length -= positions;
    }

    // keys [B*heads, head_dim, S]: zeros in front along S
    private static Tensor padKeys(Tensor key, long columns) {
        if (columns == 0) return key;
        return torch.cat(new TensorVector(torch.zeros(new long[]{key.size(0), key.size(1), columns}, key.options()), key), 2);
    }

    // values [B*heads, S, head_dim]
    private static Tensor padValues(Tensor value, long columns) {
        if (columns == 0) return value;
        return torch.cat(new TensorVector(torch.zeros(new long[]{value.size(0), columns, value.size(2)}, value.options()), value), 1);
    }

    /** Puts in {@code layer}'s buffers; unless the caller says otherwise, every position of them is resident (written). */
    private void replace(int layer, Tensor key, Tensor value) {
        version++;
        resident[layer] = key.size(2);
        if (keys[layer] != null) keys[layer].close();
        if (values[layer] != null) values[layer].close();
        keys[layer] = key;
        values[layer] = value;
    }

    @Override
    public void close() {
        version++;
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) keys[i].close();
            if (values[i] != null) values[i].close();
            keys[i] = null;
            values[i] = null;
        }
        length = 0;
    }
}
