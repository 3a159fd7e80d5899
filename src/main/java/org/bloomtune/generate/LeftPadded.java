package org.bloomtune.generate;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Prompts of different lengths as one batch, padded on the left so every row's next token is the
 * last column: {@code inputIds} and {@code attentionMask} [B, longest] int64. Owns both tensors.
 */
public record LeftPadded(Tensor inputIds, Tensor attentionMask) implements AutoCloseable {

    public static LeftPadded of(List<long[]> prompts, long padId) {
        if (prompts.isEmpty()) throw new IllegalArgumentException("no prompt given");
        int longest = 0;
        for (int b = 0; b < prompts.size(); b++) {
            if (prompts.get(b).length == 0) throw new IllegalArgumentException("prompt " + b + " is empty");
            longest = Math.max(longest, prompts.get(b).length);
        }
        int batch = prompts.size();
        long[] ids = new long[batch * longest];
        long[] mask = new long[batch * longest];
        for (int b = 0; b < batch; b++) {
            long[] p = prompts.get(b);
            int pad = longest - p.length;
            for (int t = 0; t < longest; t++) {
                ids[b * longest + t] = t < pad ? padId : p[t - pad];
                mask[b * longest + t] = t < pad ? 0 : 1;
            }
        }
        return new LeftPadded(Tensors.fromLongs(ids, batch, longest), Tensors.fromLongs(mask, batch, longest));
    }

    /** Each prompt's distinct tokens, in order: what the repetition penalty starts from. */
    public static List<Set<Long>> seen(List<long[]> prompts) {
        return prompts.stream().map(p -> {
            Set<Long> s = new LinkedHashSet<>();
            for (long id : p) s.add(id);
            return s;
        }).toList();
    }

    @Override
    public void close() {
        inputIds.close();
        attentionMask.close();
    }
}
