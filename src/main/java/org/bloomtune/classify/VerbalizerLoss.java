package org.bloomtune.classify;

import org.bloomtune.autograd.HeadLoss;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.PreparedInput;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * The classification objective ({@link LabelCrossEntropy}) as the reverse pass's head: its loss and
 * gradient with respect to the last block's output. All texts of a batch share one verbalizer (one task).
 */
public final class VerbalizerLoss implements HeadLoss {
    private final VerbalizedBatch batch;
    private final long[] gold;

    /** {@code gold[n]} is the label index of text n. */
    public VerbalizerLoss(VerbalizedBatch batch, long[] gold) {
        if (gold.length != batch.texts()) throw new IllegalArgumentException(gold.length + " labels for " + batch.texts() + " texts");
        int labels = batch.numLabels(0);
        for (int n = 0; n < gold.length; n++) {
            if (batch.numLabels(n) != labels) throw new IllegalArgumentException("a training batch mixes verbalizers");
            if (gold[n] < 0 || gold[n] >= labels) throw new IllegalArgumentException("text " + n + " has label " + gold[n] + " of " + labels);
        }
        this.batch = batch;
        this.gold = gold.clone();
    }

    @Override
    public Result lossAndGrad(BloomModel model, Tensor lastOutput, PreparedInput input) {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor x = Autograd.leaf(lastOutput);
            Tensor loss = loss(model, x);
            Autograd.backward(loss);
            return new Result(Tensors.toFloat(loss), Scopes.owned(() -> Tensors.gradient(x)));
        }
    }

    /** The mean cross-entropy, recorded when {@code lastOutput} is; it belongs to the open scope. */
    public Tensor loss(BloomModel model, Tensor lastOutput) {
        return LabelCrossEntropy.mean(LabelScores.of(model, lastOutput, batch).view(batch.texts(), batch.numLabels(0)), gold);
    }
}
