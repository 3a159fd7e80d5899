package org.bloomtune.data;

import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.PackedMask;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.List;

/**
 * A padded batch: examples padded on the right to the longest — ids with the pad id, attention
 * mask 0, labels -100, as a seq2seq collator does. A packed example's tokens get mask value 2 + r
 * for its record r ({@link PackedMask}), so each record attends to itself alone. Owns its three
 * tensors [B, T].
 */
public record Batch(Tensor inputIds, Tensor attentionMask, Tensor labels, long tokens) implements AutoCloseable {

    public static Batch collate(List<Example> examples, long padId) {
        int width = examples.stream().mapToInt(Example::length).max().orElseThrow();
        int batch = examples.size();
        long[] ids = new long[batch * width];
        long[] mask = new long[batch * width];
        long[] labels = new long[batch * width];
        long tokens = 0;
        for (int b = 0; b < batch; b++) {
            Example e = examples.get(b);
            int record = 0;
            for (int t = 0; t < width; t++) {
                boolean real = t < e.length();
                if (real && record + 1 < e.records() && e.recordStarts()[record + 1] == t) record++;
                ids[b * width + t] = real ? e.ids()[t] : padId;
                mask[b * width + t] = !real ? 0 : e.packed() ? PackedMask.FIRST_RECORD + record : 1;
                labels[b * width + t] = real ? e.labels()[t] : CausalLmLoss.IGNORE_INDEX;
            }
            tokens += e.length();
        }
        return new Batch(Tensors.fromLongs(ids, batch, width), Tensors.fromLongs(mask, batch, width),
                Tensors.fromLongs(labels, batch, width), tokens);
    }

    @Override
    public void close() {
        inputIds.close();
        attentionMask.close();
        labels.close();
    }
}
