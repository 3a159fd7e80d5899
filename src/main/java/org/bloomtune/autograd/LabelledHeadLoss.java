package org.bloomtune.autograd;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.WordEmbedding;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * The causal-LM loss and its gradient with respect to the last block's output, with {@code ln_f},
 * lm_head and cross-entropy run only at positions that predict a label. The seed's loss counts
 * response tokens only, so most positions (the instruction, padding, the virtual tokens) never
 * reach the 250880-word lm_head; and the vocabulary streams past in blocks that fit {@link
 * #budgetBytes} ({@link FusedLinearCrossEntropy}), so the {@code [B, T, V]} logits — over a
 * gigabyte for bloom-560m at 4 × 256 — never exist. Equals HF's shifted mean loss and its gradient.
 */
final class LabelledHeadLoss {
    /** Labelled positions per pass over the vocabulary: the lm_head's GEMMs want many rows. */
    static final long MAX_ROWS = 4096;

    /**
     * Budget for the head's working memory, one vocabulary block (see {@link #columns}): the load
     * option, or automatically 256 MiB, which keeps the lm_head's GEMMs at the peak; an int8 model
     * is chosen for memory, so it gets a quarter.
     */
    static long budgetBytes(BloomModel model) {
        long chosen = model.options().headBlockBytes();
        if (chosen > 0) return chosen;
        return model.stages().wordEmbeddings().rowsAreViews() ? 256L << 20 : 64L << 20;
    }

    private LabelledHeadLoss() {}

    /**
     * @param lastOutput the last block's output [B, T, H]
     * @param labels     [B, T] int64, -100 where no loss is taken (position t predicts label t+1)
     * @return the mean loss and d loss / d lastOutput [B, T, H] (zero where nothing is predicted)
     */
    static HeadLoss.Result lossAndGrad(BloomModel model, Tensor lastOutput, Tensor labels) {
        return lossAndGrad(model, lastOutput, labels, MAX_ROWS, 0);
    }

    /**
     * Vocabulary rows per block for a pass over {@code rows} positions, within {@link #budgetBytes}:
     * a float32 logit per row, charged 8 bytes in half precision (float16's GEMM result and copy of
     * the block come on top; a bfloat16 block uses 2 of them, and four times wider bfloat16 blocks
     * were no faster), and a float32 dequantized weight row unless the embedding's rows are views.
     * A multiple of 64: the bfloat16 GEMM sums over a block's columns in pairs, 64 at a time.
     */
    static long columns(BloomModel model, long rows) {
        WordEmbedding head = model.stages().wordEmbeddings();
        long perLogit = model.dtype().byteSize() >= Float.BYTES ? Float.BYTES : Float.BYTES + 2L * model.dtype().byteSize();
        long perColumn = perLogit * rows + (head.rowsAreViews() ? 0 : Float.BYTES * model.config().hiddenSize());
        return Math.max(1024, budgetBytes(model) / perColumn / 64 * 64);
    }

    /**
     * As above with at most {@code rowsPerPass} labelled positions per pass over the vocabulary and
     * {@code columns} vocabulary rows per block (0: as many as {@link #budgetBytes} allows).
     */
    static HeadLoss.Result lossAndGrad(BloomModel model, Tensor lastOutput, Tensor labels, long rowsPerPass, long columns) {
        long batch = lastOutput.size(0);
        long length = lastOutput.size(1);
        long hidden = lastOutput.size(2);
        try (PointerScope scope = new PointerScope()) {
            Labelled l = Labelled.of(lastOutput, labels);
            Tensor where = l.where(), rows = l.rows(), picked = l.targets();
            long counted = where.size(0);
            if (counted == 0) throw new IllegalArgumentException("the batch has no label to learn from (all are -100)");
            Tensor rowGrad = torch.empty_like(rows);
            double loss = 0;
            for (long start = 0; start < counted; start += rowsPerPass) {
                long n = Math.min(rowsPerPass, counted - start);
                loss += pass(model, rows.narrow(0, start, n), picked.narrow(0, start, n), rowGrad.narrow(0, start, n),
                        counted, columns > 0 ? columns : columns(model, n));
            }
            Tensor grad = Scopes.owned(() -> torch.zeros(new long[]{batch * length, hidden}, lastOutput.options())
                    .index_copy_(0, where, rowGrad).view(batch, length, hidden));
            return new HeadLoss.Result((float) (loss / counted), grad);
        }
    }

    /**
     * The summed (not mean) loss over the labels alone, for evaluation: {@code ln_f} and the streamed
     * head at labelled positions, nothing recorded and no gradient formed. 0 when nothing is labelled.
     */
    static double lossSum(BloomModel model, Tensor lastOutput, Tensor labels) {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            Labelled l = Labelled.of(lastOutput, labels);
            Tensor rows = l.rows(), picked = l.targets();
            long counted = rows.size(0);
            double loss = 0;
            for (long start = 0; start < counted; start += MAX_ROWS) {
                long n = Math.min(MAX_ROWS, counted - start);
                try (PointerScope pass = new PointerScope()) {
                    Tensor normed = model.stages().finalNorm(rows.narrow(0, start, n));
                    loss += FusedLinearCrossEntropy.lossSum(model.stages().wordEmbeddings(), model.config().vocabSize(), normed,
                            picked.narrow(0, start, n), columns(model, n));
                }
            }
            return loss;
        }
    }

    /** The K positions of [B·T] that predict a label, their rows of the last output [K, H] and their targets [K]. */
    private record Labelled(Tensor where, Tensor rows, Tensor targets) {
        static Labelled of(Tensor lastOutput, Tensor labels) {
            Tensor targets = shiftedTargets(labels);                                  // [B·T]
            Tensor where = targets.ne(new Scalar(CausalLmLoss.IGNORE_INDEX)).nonzero().reshape(-1);
            Tensor rows = lastOutput.detach().reshape(lastOutput.size(0) * lastOutput.size(1), lastOutput.size(2)).index_select(0, where);
            return new Labelled(where, rows, targets.index_select(0, where));
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
     * Writes these rows' share of the gradient into {@code gradOut}; returns their summed loss.
     * Only {@code ln_f} is recorded: the lm_head and cross-entropy are differentiated by hand
     * ({@link FusedLinearCrossEntropy}), so no [K, V] logits and no autograd graph over them exist.
     */
    private static double pass(BloomModel model, Tensor hidden, Tensor targets, Tensor gradOut, long counted, long columns) {
        try (PointerScope scope = new PointerScope(); GradMode on = GradMode.on()) {
            Tensor x = Autograd.leaf(hidden);
            Tensor normed = model.stages().finalNorm(x);                                        // recorded
            FusedLinearCrossEntropy.Result ce;
            try (GradMode off = GradMode.off()) {
                ce = FusedLinearCrossEntropy.lossAndGrad(model.stages().wordEmbeddings(), model.config().vocabSize(),
                        normed.detach(), targets, 1.0 / counted, columns);
            }
            Autograd.backward(normed, ce.grad());
            gradOut.copy_(Tensors.gradient(x));
            return ce.lossSum();
        }
    }
}
