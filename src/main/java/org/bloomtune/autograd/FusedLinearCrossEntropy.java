package org.bloomtune.autograd;

import org.bloomtune.kernels.DenseGemm;
import org.bloomtune.kernels.OnlineSoftmax;
import org.bloomtune.model.WordEmbedding;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Cross-entropy through BLOOM's tied lm_head, and its gradient with respect to the head's input,
 * without the [K, V] logits: the vocabulary streams past in blocks of columns. Each block's logits
 * are one GEMM into a reused buffer, an online softmax turns them into exp(x − running max) in
 * place ({@link OnlineSoftmax}), and a second GEMM adds their share of Σ exp(x − max) · W to the
 * gradient, rescaled whenever a row's running max grows — flash attention's recurrence over the
 * vocabulary instead of the keys. At the end d CE / d h = Σ softmax · W − W[target].
 *
 * <p>Besides memory, this is what makes the head fast: both GEMMs are [K × H] by [H × columns]
 * shapes that run at the GEMM peak, where a chunk of rows against the whole 250880-word vocabulary
 * ran about a fifth slower, and no pass over the logits allocates. A bfloat16 model's blocks stay
 * bfloat16 (its GEMMs round their logits to bfloat16 anyway, and the second GEMM takes bfloat16):
 * the online softmax widens and rounds each value itself, so no block is ever converted.
 */
final class FusedLinearCrossEntropy {
    private FusedLinearCrossEntropy() {}

    /** The summed loss and {@code scale} · d (summed loss) / d hidden [K, H], in hidden's dtype. */
    record Result(double lossSum, Tensor grad) {}

    /**
     * @param head    the tied word embedding, [V, H]
     * @param hidden  [K, H] the lm_head's input (ln_f's output) at positions that carry a label
     * @param targets [K] int64 label ids, each in [0, V)
     * @param columns vocabulary rows per block
     */
    static Result lossAndGrad(WordEmbedding head, long vocab, Tensor hidden, Tensor targets, double scale, long columns) {
        double[] lossSum = new double[1];
        Tensor grad = Scopes.inner(() -> {
            DType type = accumulation(hidden);
            Streamed s = stream(head, vocab, hidden, type, Math.min(columns, vocab), true);
            Tensor target = head.lookup(targets).to(type.scalarType());                  // W[target], [K, H]
            lossSum[0] = summedLoss(s, hidden, target);
            // softmax · W = acc / sum; minus the one-hot's W[target]; times the mean's scale.
            return s.acc().div_(s.state().sum().to(type.scalarType()).unsqueeze(1)).sub_(target).mul_(new Scalar(scale))
                    .to(hidden.scalar_type());
        });
        return new Result(lossSum[0], grad);
    }

    /** The summed loss alone, as {@link #lossAndGrad} forms it: one GEMM per block, no gradient accumulated. */
    static double lossSum(WordEmbedding head, long vocab, Tensor hidden, Tensor targets, long columns) {
        try (PointerScope scope = new PointerScope()) {
            DType type = accumulation(hidden);
            Streamed s = stream(head, vocab, hidden, type, Math.min(columns, vocab), false);
            return summedLoss(s, hidden, head.lookup(targets).to(type.scalarType()));
        }
    }

    /** Σ exp(x − max) · W over the vocabulary [K, H] (null when not asked for), and each row's running max and sum. */
    private record Streamed(Tensor acc, OnlineSoftmax.State state) {}

    /** Σ over rows of log Σ exp(logits) − the target's logit, the target rows W[target] given in the accumulation dtype. */
    private static double summedLoss(Streamed s, Tensor hidden, Tensor target) {
        Tensor targetLogits = hidden.to(target.scalar_type()).mul(target).sum(new ScalarTypeOptional(ScalarType.Double));
        return s.state().logSumExpTotal() - Tensors.toDouble(targetLogits);
    }

    /**
     * One pass over the vocabulary, {@code width} rows of W at a time, accumulating Σ exp · W when
     * {@code gradient}; the tensors belong to the open scope.
     */
    private static Streamed stream(WordEmbedding head, long vocab, Tensor hidden, DType type, long width, boolean gradient) {
        long rows = hidden.size(0);
        Tensor acc = gradient ? torch.zeros(new long[]{rows, hidden.size(1)}, Tensors.options(type, hidden.device())) : null;
        OnlineSoftmax.State state = OnlineSoftmax.State.start(rows, type, hidden.device());
        Tensor buffer = torch.empty(new long[]{rows * width}, Tensors.options(blockType(hidden, type), hidden.device()), new MemoryFormatOptional());
        for (long start = 0; start < vocab; start += width) {
            long n = Math.min(width, vocab - start);
            try (PointerScope block = new PointerScope()) {
                Tensor w = head.rows(start, n);                                          // [n, H]
                Tensor logits = buffer.narrow(0, 0, rows * n).view(rows, n);
                logitsInto(logits, hidden, w);
                OnlineSoftmax.update(logits, state);                                     // logits = exp(x − max)
                if (acc != null) {
                    acc.mul_(state.rescale().unsqueeze(1));
                    addProduct(acc, logits, w);
                }
            }
        }
        return new Streamed(acc, state);
    }

    /** Logits and gradient accumulate in float32, or in float64 for a float64 model. */
    private static DType accumulation(Tensor hidden) {
        return hidden.scalar_type().value == ScalarType.Double.value ? DType.F64 : DType.F32;
    }

    /** bfloat16 blocks for bfloat16 hidden states, else the accumulation dtype. */
    private static DType blockType(Tensor hidden, DType accumulation) {
        return hidden.scalar_type().value == ScalarType.BFloat16.value ? DType.BF16 : accumulation;
    }

    /** {@code block} = hidden · wᵀ, straight into the buffer when the dtypes allow. */
    private static void logitsInto(Tensor block, Tensor hidden, Tensor w) {
        if (sameType(hidden, block) && DenseGemm.applies(hidden, w, true)) {
            DenseGemm.linearInto(block, hidden, w);
        } else if (sameType(hidden, block) && sameType(w, block)) {
            torch.mm_out(block, hidden, w.t());
        } else {
            block.copy_(hidden.mm(w.t()));
        }
    }

    /** {@code acc} += block · w, in the accumulation dtype (bfloat16 products summed into it unrounded where the kernel takes them). */
    private static void addProduct(Tensor acc, Tensor block, Tensor w) {
        if (acc.scalar_type().value == ScalarType.Float.value && DenseGemm.applies(block, w, false)) {
            DenseGemm.addProductInto(acc, block, w);
        } else if (sameType(w, acc)) {
            acc.addmm_(block, w);
        } else {
            acc.add_(block.to(w.scalar_type()).mm(w));
        }
    }

    private static boolean sameType(Tensor a, Tensor b) { return a.scalar_type().value == b.scalar_type().value; }
}
