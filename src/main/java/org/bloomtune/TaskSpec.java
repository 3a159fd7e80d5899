package org.bloomtune;

import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainingTask;

import java.nio.file.Path;
import java.util.List;

/**
 * What to prompt-tune for, as records and options: {@link Tasks#instructions} (the seed's causal-LM
 * recipe) or {@link Tasks#classification} (a verbalizer). {@link PromptTuning} turns it into
 * examples once the model and tokenizer are known.
 */
public sealed interface TaskSpec permits Tasks.Instructions, Tasks.Classification {

    /** The records encoded for {@code model}: the objective, its examples, and what to do after training. */
    Prepared<?> prepare(BloomModel model, Tokenizer tokenizer);

    /**
     * A task ready to train.
     *
     * @param <E> the encoded example
     */
    interface Prepared<E> {
        TrainingTask<E> task();

        List<E> train();

        List<E> eval();

        /** Writes what the adapter needs besides the prompt (a verbalizer) and returns a report for the user, or "". */
        String finish(SoftPrompt prompt, Path adapter, int batchSize);
    }
}
