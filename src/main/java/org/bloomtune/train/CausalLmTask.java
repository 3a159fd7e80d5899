package org.bloomtune.train;

import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.data.Batch;
import org.bloomtune.data.Example;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmLoss;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;

import java.util.List;
import java.util.Map;

/** The seed's objective: the causal-LM loss on the labelled (response) tokens of each example. */
public final class CausalLmTask implements TrainingTask<Example> {
    private final BloomModel model;

    public CausalLmTask(BloomModel model) {
        this.model = model;
    }

    @Override
    public int length(Example example) { return example.length(); }

    @Override
    public double lossAndGrad(SoftPrompt prompt, List<Example> examples, ReversePass pass) {
        try (Batch batch = Batch.collate(examples, model.config().padTokenId()); PointerScope scope = new PointerScope()) {
            return PromptBackward.lossAndGrad(model,
                    PromptedInput.of(model, prompt, batch.inputIds(), batch.attentionMask(), batch.labels()), pass);
        }
    }

    /** The token-weighted mean loss over {@code eval} and its perplexity. */
    @Override
    public Evaluation evaluate(SoftPrompt prompt, List<Example> eval, int batchSize) {
        double sum = 0;
        long count = 0;
        try (GradMode off = GradMode.off()) {
            for (int i = 0; i < eval.size(); i += batchSize) {
                List<Example> part = eval.subList(i, Math.min(eval.size(), i + batchSize));
                try (Batch batch = Batch.collate(part, model.config().padTokenId()); PointerScope scope = new PointerScope()) {
                    var input = PromptedInput.of(model, prompt, batch.inputIds(), batch.attentionMask(), batch.labels());
                    long n = CausalLmLoss.countedLabels(input.labels());
                    if (n == 0) continue;
                    try (CausalLmOutput out = model.forward(input)) {
                        sum += Tensors.toDouble(out.loss()) * n;
                        count += n;
                    }
                }
            }
        }
        double loss = count == 0 ? Double.NaN : sum / count;
        return new Evaluation(loss, Map.of("eval_ppl", Math.exp(loss)),
                String.format("loss %.4f, perplexity %.2f", loss, Math.exp(loss)));
    }

    @Override
    public Map<String, String> settings() {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        out.put("task", "causal-lm");
        out.putAll(TrainingTask.modelSettings(model));
        return out;
    }

    @Override
    public void fingerprint(Example example, DataFingerprint fingerprint) {
        fingerprint.add(example.ids()).add(example.labels());
    }
}
