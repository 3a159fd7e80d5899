package org.bloomtune.autograd;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.PreparedInput;
import org.bytedeco.pytorch.Tensor;

/**
 * The objective on top of the last block — {@code ln_f}, lm_head and a loss — as seen by the
 * reverse pass: it takes the last block's output and returns the loss and its gradient with
 * respect to that output. Causal-LM training uses {@link #causalLm()}; classification supplies a
 * verbalizer's objective. Both reverse-pass paths call it the same way, so the head never
 * decides how the blocks are differentiated.
 */
public interface HeadLoss {

    /** The loss and d loss / d lastOutput [B, T, H], which the caller owns. */
    record Result(float loss, Tensor grad) {}

    /**
     * @param lastOutput the last block's output [B, T, H], detached (not recorded)
     * @param input      the prepared batch (labels, mask) the blocks ran on
     */
    Result lossAndGrad(BloomModel model, Tensor lastOutput, PreparedInput input);

    /**
     * HF's shifted cross-entropy summed over the labels of {@code labels} [B, T] from the last
     * block's output [B, T, H] — evaluation's loss: the head runs only where a label is predicted
     * and streams the vocabulary, so no [B, T, V] logits exist, and no gradient is formed.
     */
    static double causalLmLossSum(BloomModel model, Tensor lastOutput, Tensor labels) {
        return LabelledHeadLoss.lossSum(model, lastOutput, labels);
    }

    /** HF's shifted mean cross-entropy over the labels of the batch, computed where labels exist. */
    static HeadLoss causalLm() {
        return (model, lastOutput, input) -> {
            if (input.labels() == null) throw new IllegalArgumentException("a training batch needs labels");
            return LabelledHeadLoss.lossAndGrad(model, lastOutput, input.labels());
        };
    }
}
