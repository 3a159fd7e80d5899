package org.bloomtune.serve;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.KvCache;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;

/**
 * The rows being decoded together, with one KV cache and one attention mask [B, S] for all of
 * them. Rows join at step boundaries — their prefilled cache appended, the shorter side padded on
 * the left and masked — and leave when done; padding no row needs any more is cut off. ALiBi counts
 * positions from the mask, so a row sees exactly the positions it would see alone.
 */
final class DecodeBatch implements AutoCloseable {
    private final BloomModel model;
    private final List<DecodeRow> rows = new ArrayList<>();
    private KvCache cache;
    private Tensor mask;                 // [B, S] int64, owned

    DecodeBatch(BloomModel model) { this.model = model; }

    int size() { return rows.size(); }

    List<DecodeRow> rows() { return rows; }

    /** Takes in newly prefilled rows: their cache (emptied) and their mask [b, S'] (taken over). */
    void join(List<DecodeRow> newcomers, KvCache prefilled, Tensor prefillMask) {
        if (cache == null) {
            cache = new KvCache(model.config().numLayers());
        }
        long[] padding = cache.appendRows(prefilled);
        try (PointerScope scope = new PointerScope()) {
            Tensor joined = mask == null ? prefillMask : torch.cat(new TensorVector(padLeft(mask, padding[0]), padLeft(prefillMask, padding[1])), 0);
            replaceMask(Tensors.escape(joined.contiguous()));
        }
        if (mask != prefillMask) prefillMask.close();
        rows.addAll(newcomers);
    }

    /** One decode step: every row's last token in, every row's next token picked and reported. */
    void step() {
        long[] ids = new long[rows.size()];
        for (int r = 0; r < ids.length; r++) ids[r] = rows.get(r).lastToken();
        try (PointerScope scope = new PointerScope()) {
            Tensor grown = torch.cat(new TensorVector(mask, torch.ones(new long[]{ids.length, 1}, Tensors.options(DType.I64, mask.device()))), 1);
            replaceMask(Tensors.escape(grown));
            DecodeRow.pickNext(model, CausalLmInput.ids(Tensors.fromLongs(ids, ids.length, 1)).mask(mask), cache, rows);
        }
    }

    /** Lets finished rows go, with their share of the cache and any padding no row needs. */
    void removeFinished() {
        List<Integer> keep = new ArrayList<>();
        for (int r = 0; r < rows.size(); r++) if (!rows.get(r).isFinished()) keep.add(r);
        if (keep.size() == rows.size()) return;
        if (keep.isEmpty()) {
            clear();
            return;
        }
        long[] index = keep.stream().mapToLong(Integer::longValue).toArray();
        cache.keepRows(index, model.config().numHeads());
        try (PointerScope scope = new PointerScope()) {
            Tensor kept = mask.index_select(0, Tensors.fromLongs(index, index.length).to(mask.device(), ScalarType.Long));
            long unused = leadingPadding(kept);
            cache.dropFront(unused);
            replaceMask(Tensors.escape(kept.narrow(1, unused, kept.size(1) - unused).contiguous()));
        }
        List<DecodeRow> still = new ArrayList<>();
        for (int r : keep) still.add(rows.get(r));
        rows.clear();
        rows.addAll(still);
    }

    /** Ends every row with {@code error} and empties the batch (the model failed mid-step). */
    void failAll(RuntimeException error) {
        rows.forEach(r -> r.fail(error));
        clear();
    }

    private void clear() {
        rows.clear();
        if (cache != null) cache.close();
        cache = null;
        replaceMask(null);
    }

    /** Columns at the front that are padding in every row. */
    private static long leadingPadding(Tensor mask) {
        long[] anyRow = Tensors.toLongs(mask.amax(new long[]{0}, false));
        long n = 0;
        while (n < anyRow.length && anyRow[(int) n] == 0) n++;
        return n;
    }

    private static Tensor padLeft(Tensor mask, long columns) {
        if (columns == 0) return mask;
        return torch.cat(new TensorVector(torch.zeros(new long[]{mask.size(0), columns}, mask.options()), mask), 1);
    }

    private void replaceMask(Tensor next) {
        if (mask != null && mask != next) mask.close();
        mask = next;
    }

    @Override
    public void close() { clear(); }
}
