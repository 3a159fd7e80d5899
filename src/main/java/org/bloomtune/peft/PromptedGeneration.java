package org.bloomtune.peft;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.LeftPadded;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.GradMode;
import org.bytedeco.javacpp.PointerScope;

import java.util.Collections;
import java.util.List;

/**
 * Generation with soft prompts, as PEFT does it: the prefill feeds the virtual tokens and the
 * prompt's token embeddings together (so the prompt enters the KV cache once), later steps feed one
 * token id each with the mask extended. Nothing is recorded for autograd.
 */
public final class PromptedGeneration {
    private PromptedGeneration() {}

    public static GenerationResult generate(BloomModel model, SoftPrompt prompt, List<long[]> prompts,
                                            GenerationConfig config, TokenListener listener) {
        return generate(model, Collections.nCopies(prompts.size(), prompt), prompts, config, listener);
    }

    /** {@code rows.get(b)} is the soft prompt of text prompt b (e.g. from a prompt bank). */
    public static GenerationResult generate(BloomModel model, List<SoftPrompt> rows, List<long[]> prompts,
                                            GenerationConfig config, TokenListener listener) {
        try (GradMode off = GradMode.off();
             LeftPadded batch = LeftPadded.of(prompts, model.config().padTokenId());
             PointerScope scope = new PointerScope()) {
            return new Generator(model).generate(
                    PromptedInput.of(model, rows, batch.inputIds(), batch.attentionMask(), null),
                    LeftPadded.seen(prompts), config, listener);
        }
    }
}
