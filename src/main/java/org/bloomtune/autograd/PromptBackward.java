package org.bloomtune.autograd;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;

/**
 * One forward and backward pass for prompt tuning: the loss of a batch whose embeddings carry soft
 * prompts (see {@code PromptedInput}), and the gradient of that loss accumulated into each
 * prompt's {@code grad()}. The backbone is frozen, so no weight gradient is ever formed.
 */
public final class PromptBackward {
    private PromptBackward() {}

    /**
     * @param input a batch with {@code inputs_embeds} that depend on the prompts, and labels
     * @return the mean loss
     */
    public static float lossAndGrad(BloomModel model, CausalLmInput input, ReversePass pass) {
        if (input.labels() == null) throw new IllegalArgumentException("a training batch needs labels");
        try (PointerScope scope = new PointerScope()) {
            if (CausalLmLoss.countedLabels(input.labels()) == 0) {
                throw new IllegalArgumentException("the batch has no label to learn from (all are -100)");
            }
        }
        try (GradMode grad = GradMode.on()) {
            return switch (pass) {
                case AUTOGRAD -> autograd(model, input);
                case RECOMPUTE_BLOCKS -> BlockRecompute.lossAndGrad(model, input);
            };
        }
    }

    private static float autograd(BloomModel model, CausalLmInput input) {
        try (PointerScope scope = new PointerScope(); CausalLmOutput out = model.forward(input)) {
            out.loss().backward();
            return Tensors.toFloat(out.loss());
        }
    }
}
