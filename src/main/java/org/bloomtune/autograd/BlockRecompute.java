package org.bloomtune.autograd;

import org.bloomtune.model.AttentionContext;
import org.bloomtune.model.AttentionPrefix;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.Int8Backward;
import org.bloomtune.model.NativeOpGraph;
import org.bloomtune.model.PreparedInput;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tensor.Scopes;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

/**
 * The project's own reverse pass (path 2). Saved: the input of every block, nothing else — each
 * block is recomputed from its input when its turn comes, so at most one block's activations exist
 * at a time. Order: embeddings (recorded, a small graph back to the prompts) → blocks unrecorded →
 * head and loss ({@link HeadLoss}) → for layer = n-1 .. 0: recompute, backpropagate, hand the input's
 * gradient down → finally through {@code word_embeddings_layernorm} into the prompts. A prefix
 * (prefix tuning) is cut loose as one leaf the blocks share: each block's backward adds its layer's
 * share to the leaf's gradient, and only at the end does that go back into the prefix's own graph
 * (its encoder), so memory stays one block's worth. An int8 model's products inside a recomputed
 * block are kept out of libtorch's graph and form their input gradients from the int8 weight
 * ({@link Int8Backward}), so the block's graph holds no dequantized float weight.
 */
final class BlockRecompute {
    private BlockRecompute() {}

    static float lossAndGrad(BloomModel model, CausalLmInput input, HeadLoss headLoss) {
        // The blocks' backward leaves the heap fragmented: start the forward from what the OS holds
        // for the model alone, or the last step's slack adds to this one's peak.
        model.stages().releaseScratch();
        ProcessMemory.trim();
        try (PointerScope scope = new PointerScope()) {
            PreparedInput in = model.stages().prepare(input, 0);
            Tensor firstInput = model.stages().embeddingsLayerNorm(in.embeds());          // recorded: leads to the prompts
            AttentionPrefix prefix = in.prefix() == null ? null
                    : new AttentionPrefix(Autograd.leaf(in.prefix().raw()), in.prefix().numLayers(), in.prefix().numHeads());
            AttentionContext ctx = model.stages().attentionContext(in.mask(), input.length(), prefix);
            try (BlockInputs saved = BlockInputs.record(model, firstInput.detach(), ctx)) {
                // Path 2 is about memory: hand the buffers the forward and the head freed back to the OS
                // (malloc_trim) before the next phase peaks (figures: benchmarks/FINDINGS.md). Trimming
                // after every block cost time.
                model.stages().releaseScratch();
                ProcessMemory.trim();
                HeadLoss.Result head = headLoss.lossAndGrad(model, saved.output(), in);
                ProcessMemory.trim();
                Tensor grad = head.grad();                                        // owned here
                for (int layer = model.stages().blocks().size() - 1; layer >= 0; layer--) {
                    Tensor below = blockBackward(model, layer, saved.input(layer), grad, ctx);
                    grad.close();
                    grad = below;
                    saved.release(layer + 1);                                     // no longer needed
                }
                if (firstInput.requires_grad()) Autograd.backward(firstInput, grad);       // into the prompts
                grad.close();
                if (prefix != null && in.prefix().raw().requires_grad()) {
                    try (Tensor prefixGrad = Tensors.gradient(prefix.raw())) {
                        if (prefixGrad.defined()) Autograd.backward(in.prefix().raw(), prefixGrad);   // into the prefix's encoder
                    }
                }
                return head.loss();
            }
        }
    }

    /** Recomputes block {@code layer} from its saved input and returns d loss / d input. */
    private static Tensor blockBackward(BloomModel model, int layer, Tensor input, Tensor gradOutput, AttentionContext ctx) {
        return Scopes.owned(() -> {
            Tensor x = Autograd.leaf(input);
            try (Int8Backward int8 = Int8Backward.open(); NativeOpGraph nativeOps = NativeOpGraph.open()) {
                Tensor y = model.stages().blocks().get(layer).forward(x, ctx, null, layer);
                Autograd.backward(y, gradOutput, int8.retainsGraph());
                int8.backward();
            }
            return Tensors.gradient(x);
        });
    }

    /** The block inputs kept by the unrecorded forward; index n is the last block's output. */
    private static final class BlockInputs implements AutoCloseable {
        private final Tensor[] inputs;

        private BlockInputs(Tensor[] inputs) {
            this.inputs = inputs;
        }

        static BlockInputs record(BloomModel model, Tensor first, AttentionContext ctx) {
            int n = model.stages().blocks().size();
            Tensor[] inputs = new Tensor[n + 1];
            inputs[0] = Tensors.escape(first);
            try (GradMode off = GradMode.off()) {
                for (int i = 0; i < n; i++) {
                    Tensor in = inputs[i];
                    int layer = i;
                    inputs[i + 1] = Scopes.owned(() -> model.stages().blocks().get(layer).forward(in, ctx, null, layer));
                }
            }
            return new BlockInputs(inputs);
        }

        Tensor input(int layer) {
            if (inputs[layer] == null) throw new IllegalStateException("block input " + layer + " was already released");
            return inputs[layer];
        }

        Tensor output() { return input(inputs.length - 1); }

        void release(int index) {
            if (inputs[index] != null) inputs[index].close();
            inputs[index] = null;
        }

        @Override
        public void close() {
            for (int i = 0; i < inputs.length; i++) release(i);
        }
    }
}
