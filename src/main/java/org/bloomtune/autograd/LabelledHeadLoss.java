package org.bloomtune.autograd;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The causal-LM loss and its gradient with respect to the last block's output, with {@code ln_f},
 * lm_head and cross-entropy run only at positions that predict a label, a chunk at a time. The
 * seed's loss counts response tokens only, so most positions (the instruction, padding, the
 * virtual tokens) never reach the 250880-word lm_head; and a chunk's float32 logits stay under
 * {@link #chunkBytes}, so the {@code [B, T, V]} logits — over a gigabyte for bloom-560m at
 * 4 × 256 — never exist. Equals HF's shifted mean loss and its gradient.
 */
final class LabelledHeadLoss {
    /**
     * Budget for one chunk's float32 logits, which become their own gradient in place: large
     * enough that the lm_head's matmuls run near the GEMM peak. An int8 model is chosen for memory,
     * so it gets a quarter of that (LLM.int8's lm_head holds an int32 buffer of the same size too).
     * The system property {@code bloomtune.headChunkMiB} overrides both.
     */
    static long chunkBytes(BloomModel model) {
        Long mib = Long.getLong("bloomtune.headChunkMiB");
        if (mib != null) return mib << 20;
        return model.wordEmbeddings() instanceof org.bloomtune.model.Int8WordEmbedding ? 64L << 20 : 256L << 20;
    }

    private LabelledHeadLoss() {}

    /**
     * @param lastOutput the last block's output [B, T, H]
     * @param labels     [B, T] int64, -100 where no loss is taken (position t predicts label t+1)
     * @return the mean loss and d loss / d lastOutput [B, T, H] (zero where nothing is predicted)
     */
    static HeadLoss.Result lossAndGrad(BloomModel model, Tensor lastOutput, Tensor labels) {
        return lossAndGrad(model, lastOutput, labels, Math.max(1, chunkBytes(model) / (4L * model.config().vocabSize())));
    }

    /** As above with {@code chunk} labelled positions per lm_head call. */
    static HeadLoss.Result lossAndGrad(BloomModel model, Tensor lastOutput, Tensor labels, long chunk) {
        long batch = lastOutput.size(0);
        long length = lastOutput.size(1);
        long hidden = lastOutput.size(2);
        try (PointerScope scope = new PointerScope()) {
            Tensor targets = shiftedTargets(labels);                                  // [B·T]
            Tensor where = targets.ne(new Scalar(CausalLmLoss.IGNORE_INDEX)).nonzero().reshape(-1);
            long counted = where.size(0);
            if (counted == 0) throw new IllegalArgumentException("the batch has no label to learn from (all are -100)");
            Tensor rows = lastOutput.detach().reshape(batch * length, hidden).index_select(0, where);   // [K, H]
            Tensor picked = targets.index_select(0, where);
            Tensor rowGrad = torch.empty_like(rows);
            double loss = 0;
            for (long start = 0; start < counted; start += chunk) {
                long n = Math.min(chunk, counted - start);
                loss += chunk(model, rows.narrow(0, start, n), picked.narrow(0, start, n), rowGrad.narrow(0, start, n), counted);
            }
            Tensor grad = Scopes.owned(() -> torch.zeros(new long[]{batch * length, hidden}, lastOutput.options())
                    .index_copy_(0, where, rowGrad).view(batch, length, hidden));
            return new HeadLoss.Result((float) loss, grad);
        }
    }

    /** Position b·T + t predicts label b·T + t + 1; the last position of each row predicts nothing. */
    private static Tensor shiftedTargets(Tensor labels) {
        long batch = labels.size(0);
        long length = labels.size(1);
        Tensor none = torch.full(new long[]{batch, 1}, new Scalar(CausalLmLoss.IGNORE_INDEX), Tensors.options(DType.I64, labels.device()));
        return torch.cat(new TensorVector(labels.narrow(1, 1, length - 1), none), 1).reshape(batch * length);
    }

    /**
     * Writes this chunk's gradient into {@code gradOut}; returns its share of the mean loss. Only
     * {@code ln_f} is recorded: the lm_head and cross-entropy are differentiated by hand, the
     * softmax overwriting the logits in place, so a chunk holds one [K, V] float buffer where
     * autograd would hold three — and the chunk can be four times larger, which is what keeps
     * the lm_head's matmuls efficient (66-row chunks made the bloom-560m head 1.55× slower).
     */
    private static double chunk(BloomModel model, Tensor hidden, Tensor targets, Tensor gradOut, long counted) {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor x = hidden.detach();
            x.requires_grad_(true);
            Tensor normed = model.finalNorm(x);                                        // recorded
            Tensor gradNormed;
            double loss;
            try (GradMode off = GradMode.off()) {
                Tensor logits = model.lmHead(normed.detach()).to(ScalarType.Float);    // [K, V], owned here
                Tensor column = targets.unsqueeze(1);
                Tensor lse = logits.logsumexp(new long[]{1}, true);                     // [K, 1]
                loss = Tensors.toDouble(lse.sub(logits.gather(1, column)).sum()) / counted;
                // d CE / d logits = (softmax − one-hot) / counted; the division rides in the exponent
                // (exp(l − lse − ln counted)), saving a pass over the [K, V] buffer.
                Tensor grad = logits.sub_(lse.add(new Scalar(Math.log(counted)))).exp_();
                grad.scatter_add_(1, column, torch.full(new long[]{targets.size(0), 1}, new Scalar(-1.0 / counted),
                        Tensors.options(DType.F32, grad.device())));
                gradNormed = model.wordEmbeddings().inputGrad(grad);
            }
            BlockRecompute.backward(normed, gradNormed);
            gradOut.copy_(Tensors.gradient(x));
            return loss;
        }
    }
}
