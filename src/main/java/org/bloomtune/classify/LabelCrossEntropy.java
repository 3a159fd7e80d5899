package org.bloomtune.classify;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The classification objective, defined once: the mean cross-entropy of each text's gold label
 * under a softmax over its label scores. Training differentiates it; evaluation reports it.
 */
final class LabelCrossEntropy {
    private static final long REDUCTION_MEAN = 1;

    private LabelCrossEntropy() {}

    /**
     * @param scores [texts, labels] float32, recorded for autograd or not
     * @param gold   each text's label index
     * @return the scalar mean loss (belongs to the open scope)
     */
    static Tensor mean(Tensor scores, long[] gold) {
        Tensor target = Tensors.fromLongs(gold, gold.length).to(scores.device(), ScalarType.Long);
        return torch.cross_entropy_loss(scores, target, new TensorOptional(), REDUCTION_MEAN, -100, 0.0);
    }
}
