package org.bloomtune.autograd;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.NativeOpGraph;
import org.bloomtune.model.PreparedInput;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * One forward and backward pass for prompt tuning: the loss of a batch whose embeddings carry soft
 * prompts (see {@code PromptedInput}), and the gradient of that loss accumulated into each
 * prompt's {@code grad()}. The backbone is frozen, so no weight gradient is ever formed.
 */
public final class PromptBackward {
    private PromptBackward() {}

    /** The causal-LM loss of a batch with labels. */
    public static float lossAndGrad(BloomModel model, CausalLmInput input, ReversePass pass) {
        if (input.labels() == null) throw new IllegalArgumentException("a training batch needs labels");
        return lossAndGrad(model, input, HeadLoss.causalLm(), pass);
    }

    /**
     * @param input a batch with {@code inputs_embeds} that depend on the prompts
     * @param head  the objective on top of the last block
     * @return the loss {@code head} reports
     */
    public static float lossAndGrad(BloomModel model, CausalLmInput input, HeadLoss head, ReversePass pass) {
        try (GradMode grad = GradMode.on()) {
            return switch (pass) {
                case AUTOGRAD -> autograd(model, input, head);
                case RECOMPUTE_BLOCKS -> BlockRecompute.lossAndGrad(model, input, head);
                case AUTO -> throw new IllegalArgumentException(
                        "reverse_pass AUTO is chosen per run (ReversePassChoice.choose); a backward call needs AUTOGRAD or RECOMPUTE_BLOCKS");
            };
        }
    }

    /** Blocks recorded by autograd; the head hands back d loss / d last output to start from. */
    private static float autograd(BloomModel model, CausalLmInput input, HeadLoss head) {
        try (PointerScope scope = new PointerScope(); NativeOpGraph nativeOps = NativeOpGraph.open()) {
            PreparedInput in = model.stages().prepare(input, 0);
            Tensor last = model.stages().lastHidden(in, input.length(), null);
            HeadLoss.Result r = head.lossAndGrad(model, last.detach(), in);
            try (Tensor grad = r.grad()) {
                Autograd.backward(last, grad);
            }
            return r.loss();
        }
    }
}
