package org.bloomtune.classify;

import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Label scores from the last block's output: {@code ln_f} and the lm_head run only at the
 * positions that predict a label word's token — a few per text, not the whole sequence — then
 * each label gets the mean log-probability of its words' tokens. Recorded for autograd when the
 * input is.
 */
final class LabelScores {
    private LabelScores() {}

    /**
     * @param lastOutput [R, N + T, H]: the batch's rows behind N virtual tokens (N may be 0)
     * @return the label scores [S] in float32, in the batch's order; tensors belong to the open scope
     */
    static Tensor of(BloomModel model, Tensor lastOutput, VerbalizedBatch batch) {
        long full = lastOutput.size(1);
        long virtual = full - batch.length();
        long hidden = lastOutput.size(2);
        long vocab = model.config().vocabSize();
        // Positions repeat (every single-token word is read at the pattern's end): run each once.
        Map<Long, Integer> unique = new LinkedHashMap<>();
        long[] picked = new long[batch.tokenId().length];
        for (int m = 0; m < picked.length; m++) {
            long flat = batch.tokenRow()[m] * full + virtual + batch.tokenPos()[m];
            int u = unique.computeIfAbsent(flat, k -> unique.size());
            picked[m] = u * vocab + batch.tokenId()[m];
        }
        long[] positions = unique.keySet().stream().mapToLong(Long::longValue).toArray();
        Tensor device = Tensors.fromLongs(positions, positions.length).to(lastOutput.device(), ScalarType.Long);
        Tensor rows = lastOutput.reshape(batch.rows() * full, hidden).index_select(0, device);               // [U, H]
        Tensor logProbs = torch.log_softmax(model.stages().head(rows).to(ScalarType.Float), 1);                      // [U, V]
        Tensor tokens = logProbs.reshape(-1).index_select(0, Tensors.fromLongs(picked, picked.length).to(lastOutput.device(), ScalarType.Long));
        Tensor average = Tensors.fromFloats(batch.average(), batch.scores(), picked.length).to(lastOutput.device(), ScalarType.Float);
        return average.matmul(tokens);                                                                       // [S]
    }
}
