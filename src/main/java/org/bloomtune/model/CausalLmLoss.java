package org.bloomtune.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** HF's causal-LM loss: position t predicts label t+1; labels equal to -100 are left out. */
public final class CausalLmLoss {
    public static final long IGNORE_INDEX = -100;
    private static final long REDUCTION_MEAN = 1;

    private CausalLmLoss() {}

    /** How many labels the shifted loss counts: those at positions 1.. that are not -100. */
    public static long countedLabels(Tensor labels) {
        long length = labels.size(1);
        return labels.narrow(1, 1, length - 1).ne(new org.bytedeco.pytorch.Scalar(IGNORE_INDEX)).sum().item_long();
    }

    /**
     * {@code logits} [B, T, V], {@code labels} [B, T] → scalar mean over counted labels, in float32
     * (float64 when the logits are).
     */
    public static Tensor mean(Tensor logits, Tensor labels) {
        long batch = logits.size(0);
        long length = logits.size(1);
        long vocab = logits.size(2);
        Tensor shiftedLogits = logits.narrow(1, 0, length - 1).reshape(batch * (length - 1), vocab);
        Tensor shiftedLabels = labels.narrow(1, 1, length - 1).reshape(batch * (length - 1));
        return torch.cross_entropy_loss(shiftedLogits.to(BloomAttention.softmaxType(logits.scalar_type())), shiftedLabels,
                new TensorOptional(), REDUCTION_MEAN, IGNORE_INDEX, 0.0);
    }
}
