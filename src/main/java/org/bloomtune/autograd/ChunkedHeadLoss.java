package org.bloomtune.autograd;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The loss and its gradient with respect to the last block's output, running {@code ln_f},
 * lm_head and cross-entropy over a chunk of positions at a time, so the full {@code [B, T, V]}
 * logits — over a gigabyte for bloom-560m at 4 × 256 — never exist; a chunk's float32 logits stay
 * under {@link #CHUNK_BYTES}. Equals HF's shifted mean loss and its gradient.
 */
final class ChunkedHeadLoss {
    /** Budget for one chunk's float32 logits (and about as much again for their gradient). */
    static final long CHUNK_BYTES = 64L << 20;
    private static final long REDUCTION_SUM = 2;

    private ChunkedHeadLoss() {}

    record Result(float loss, Tensor grad) {}

    /**
     * @param lastOutput the last block's output [B, T, H]
     * @param labels     [B, T] int64, -100 where no loss is taken (position t predicts label t+1)
     * @return the mean loss and d loss / d lastOutput [B, T, H], which the caller owns
     */
    static Result lossAndGrad(BloomModel model, Tensor lastOutput, Tensor labels) {
        long batch = lastOutput.size(0);
        long length = lastOutput.size(1);
        long hidden = lastOutput.size(2);
        long counted = CausalLmLoss.countedLabels(labels);
        // Position b·T + t predicts label b·T + t + 1; the last position of each row predicts nothing.
        Tensor targets = Scopes.owned(() -> torch.cat(new org.bytedeco.pytorch.TensorVector(
                labels.narrow(1, 1, length - 1), torch.full(new long[]{batch, 1}, new Scalar(CausalLmLoss.IGNORE_INDEX),
                        Tensors.options(org.bloomtune.tensor.DType.I64, labels.device()))), 1).reshape(batch * length));
        Tensor flat = lastOutput.detach().reshape(batch * length, hidden);
        Tensor grad = Scopes.owned(() -> torch.empty_like(flat));
        long rows = Math.max(1, CHUNK_BYTES / (4L * model.config().vocabSize()));
        double loss = 0;
        for (long start = 0; start < batch * length; start += rows) {
            long n = Math.min(rows, batch * length - start);
            loss += chunk(model, flat.narrow(0, start, n), targets.narrow(0, start, n), grad.narrow(0, start, n), counted);
        }
        targets.close();
        Tensor shaped = Scopes.owned(() -> grad.view(batch, length, hidden));
        grad.close();
        return new Result((float) loss, shaped);
    }

    /** Writes this chunk's gradient into {@code gradOut}; returns its share of the mean loss. */
    private static double chunk(BloomModel model, Tensor hidden, Tensor targets, Tensor gradOut, long counted) {
        try (PointerScope scope = new PointerScope()) {
            Tensor x = hidden.detach();
            x.requires_grad_(true);
            Tensor logits = model.head(x).to(ScalarType.Float);                        // [K, V]
            Tensor share = torch.cross_entropy_loss(logits, targets, new TensorOptional(), REDUCTION_SUM,
                    CausalLmLoss.IGNORE_INDEX, 0.0).div(new Scalar((double) counted));
            share.backward();
            gradOut.copy_(Tensors.gradient(x));
            return Tensors.toDouble(share);
        }
    }
}
