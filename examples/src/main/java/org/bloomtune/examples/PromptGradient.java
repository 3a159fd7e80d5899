package org.bloomtune.examples;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;

/**
 * The research view under PromptTuning: a soft prompt in front of the token embeddings, as PEFT
 * puts it, one loss and the gradient that reaches the prompt alone; then the prompt saved as a PEFT
 * adapter that Python's PEFT loads.
 */
public final class PromptGradient {
    public static void main(String[] args) {
        Path out = Path.of(args.length > 0 ? args[0] : "out/examples/adapter");
        try (BloomModel model = BloomModel.load(Path.of("models/bloom-tiny"))) {
            AdapterConfig config = AdapterConfig.forModel(model.config(), 10, PromptInit.RANDOM, null, "models/bloom-tiny");
            try (SoftPrompt prompt = SoftPrompt.init(model, config, null, 42);
                 PointerScope scope = new PointerScope();
                 Tensor ids = Tensors.fromLongs(new long[]{1, 5, 9, 2}, 1, 4)) {
                CausalLmInput batch = PromptedInput.of(model, prompt, ids, null, ids);            // labels = ids
                float loss = PromptBackward.lossAndGrad(model, batch, ReversePass.RECOMPUTE_BLOCKS);
                Tensor grad = prompt.grad();                                                        // [10, hidden]
                System.out.println("loss " + loss + ", prompt gradient " + Tensors.shapeString(grad));
                PeftAdapter.save(out, config, prompt);
            }
        }
    }
}
