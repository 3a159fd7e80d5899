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
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Puts continuous prompts in front of a batch exactly as PEFT does for causal LMs. Prompt tuning and
 * P-tuning: the virtual tokens take positions 0..N-1 of every row (ahead of any left padding) and go
 * through {@code word_embeddings_layernorm} with the tokens; the mask gets N leading ones and the
 * labels N leading -100. Prefix tuning: the prompt becomes N key/value positions in every layer
 * ({@link CausalLmInput#prefix}); the mask gets N leading ones, the labels stay as they are. Each row
 * may use its own prompt (a prompt bank's mixed batch) as long as all enter the same way with the
 * same N; gradients reach every prompt used, summed over its rows. The tensors built here belong to
 * the open scope.
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
        boolean embeddings = rows.getFirst().type().entersEmbeddings();
        Tensor prompts = stack(model, rows, virtual, embeddings);                                   // [B, N, width]
        Tensor mask = attentionMask != null ? attentionMask.to(model.device(), DType.I64.scalarType())
                : torch.ones(new long[]{batch, length}, Tensors.options(DType.I64, model.device()));
        Tensor fullMask = torch.cat(new TensorVector(
                torch.ones(new long[]{batch, virtual}, Tensors.options(DType.I64, model.device())), mask), 1);
        if (!embeddings) {
            CausalLmInput input = CausalLmInput.ids(inputIds).mask(fullMask).prefix(prompts);
            return labels == null ? input : input.labels(labels);
        }
        Tensor embeds = torch.cat(new TensorVector(prompts, model.embed(inputIds)), 1);             // [B, N+T, H]
        CausalLmInput input = CausalLmInput.embeds(embeds).mask(fullMask);
        if (labels == null) return input;
        Tensor ignored = torch.full(new long[]{batch, virtual}, new Scalar(CausalLmLoss.IGNORE_INDEX),
                Tensors.options(DType.I64, model.device()));
        return input.labels(torch.cat(new TensorVector(ignored, labels.to(model.device(), DType.I64.scalarType())), 1));
    }

    /** Every row's prompt, computed once per distinct prompt, on the model's device in its dtype. */
    private static Tensor stack(BloomModel model, List<SoftPrompt> rows, int virtual, boolean embeddings) {
        Map<SoftPrompt, Tensor> outputs = new IdentityHashMap<>();
        TensorVector perRow = new TensorVector();
        for (SoftPrompt p : rows) {
            checkFits(model, p, virtual, embeddings);
            perRow.push_back(outputs.computeIfAbsent(p, SoftPrompt::output));
        }
        return torch.stack(perRow, 0).to(model.device(), model.dtype().scalarType());
    }

    private static void checkFits(BloomModel model, SoftPrompt p, int virtual, boolean embeddings) {
        if (p.type().entersEmbeddings() != embeddings) {
            throw new IllegalArgumentException("prefix-tuning prompts cannot share a batch with prompt-tuning or P-tuning ones ("
                    + p.type() + " among " + (embeddings ? "virtual tokens" : "prefixes") + ")");
        }
        int width = embeddings ? model.config().hiddenSize() : model.config().prefixWidth();
        if (p.tokenDim() != width) {
            throw new IllegalArgumentException(p.type() + " prompt width " + p.tokenDim() + " does not match the model's "
                    + (embeddings ? "hidden size " : "2 · layers · hidden size ") + width);
        }
        if (p.numVirtualTokens() != virtual) {
            throw new IllegalArgumentException("prompts in one batch must have the same num_virtual_tokens ("
                    + virtual + " vs " + p.numVirtualTokens() + ")");
        }
    }
}
