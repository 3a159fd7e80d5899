package org.bloomtune.peft;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.Collections;
import java.util.List;

/**
 * Puts soft prompts in front of a batch exactly as PEFT's prompt tuning does for causal LMs: the
 * virtual tokens take positions 0..N-1 of every row (ahead of any left padding) and go through
 * {@code word_embeddings_layernorm} with the tokens; the mask gets N leading ones and the labels N
 * leading -100. Each row may use its own prompt (a prompt bank's mixed batch); gradients reach
 * every prompt used, summed over its rows. The tensors built here belong to the open scope.
 */
public final class PromptedInput {
    private PromptedInput() {}

    /** The same prompt for every row. */
    public static CausalLmInput of(BloomModel model, SoftPrompt prompt, Tensor inputIds, Tensor attentionMask, Tensor labels) {
        return of(model, Collections.nCopies((int) inputIds.size(0), prompt), inputIds, attentionMask, labels);
    }

    /** {@code rows.get(b)} is row b's prompt; all must have the same number of virtual tokens. */
    public static CausalLmInput of(BloomModel model, List<SoftPrompt> rows, Tensor inputIds, Tensor attentionMask, Tensor labels) {
        long batch = inputIds.size(0);
        long length = inputIds.size(1);
        if (rows.size() != batch) throw new IllegalArgumentException(rows.size() + " prompts for a batch of " + batch);
        int virtual = rows.getFirst().numVirtualTokens();
        TensorVector weights = new TensorVector();
        for (SoftPrompt p : rows) {
            checkFits(model, p, virtual);
            weights.push_back(p.weight());
        }
        Tensor prompts = torch.stack(weights, 0).to(model.device(), model.dtype().scalarType());   // [B, N, H]
        Tensor embeds = torch.cat(new TensorVector(prompts, model.embed(inputIds)), 1);             // [B, N+T, H]
        Tensor mask = attentionMask != null ? attentionMask.to(model.device(), DType.I64.scalarType())
                : torch.ones(new long[]{batch, length}, Tensors.options(DType.I64, model.device()));
        Tensor fullMask = torch.cat(new TensorVector(
                torch.ones(new long[]{batch, virtual}, Tensors.options(DType.I64, model.device())), mask), 1);
        CausalLmInput input = CausalLmInput.embeds(embeds).mask(fullMask);
        if (labels == null) return input;
        Tensor ignored = torch.full(new long[]{batch, virtual}, new Scalar(CausalLmLoss.IGNORE_INDEX),
                Tensors.options(DType.I64, model.device()));
        return input.labels(torch.cat(new TensorVector(ignored, labels.to(model.device(), DType.I64.scalarType())), 1));
    }

    private static void checkFits(BloomModel model, SoftPrompt p, int virtual) {
        if (p.tokenDim() != model.config().hiddenSize()) {
            throw new IllegalArgumentException("soft prompt token_dim " + p.tokenDim() + " does not match the model's hidden size "
                    + model.config().hiddenSize());
        }
        if (p.numVirtualTokens() != virtual) {
            throw new IllegalArgumentException("prompts in one batch must have the same num_virtual_tokens ("
                    + virtual + " vs " + p.numVirtualTokens() + ")");
        }
    }
}
