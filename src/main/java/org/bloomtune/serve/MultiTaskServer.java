package org.bloomtune.serve;

import org.bloomtune.classify.Classifier;
import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Prediction;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One frozen model serving every task of a {@link PromptBank}. A call answers a batch of requests
 * for any mix of tasks: the classification requests run as one mixed batch (each row behind its
 * task's prompt, scored with its task's label words), the generation requests as another, split
 * only where prompts differ in length (virtual tokens). Answers come back in request order.
 */
public final class MultiTaskServer {
    private final BloomModel model;
    private final Tokenizer tokenizer;
    private final PromptBank bank;
    private final GenerationConfig generation;
    private final Map<String, ClassifyEncoder> encoders = new HashMap<>();

    public MultiTaskServer(BloomModel model, Tokenizer tokenizer, PromptBank bank, GenerationConfig generation, int maxLength) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.bank = bank;
        this.generation = generation;
        for (String task : bank.names()) {
            bank.verbalizer(task).ifPresent(v -> encoders.put(task,
                    new ClassifyEncoder(tokenizer, LabelWords.encode(v, tokenizer, model.config().vocabSize()), maxLength)));
        }
    }

    public List<TaskResponse> serve(List<TaskRequest> requests) {
        for (TaskRequest r : requests) bank.prompt(r.task());      // unknown tasks fail before any work
        TaskResponse[] out = new TaskResponse[requests.size()];
        for (List<Integer> group : byPromptShape(requests, true).values()) classify(requests, group, out);
        for (List<Integer> group : byPromptShape(requests, false).values()) generate(requests, group, out);
        return List.of(out);
    }

    private void classify(List<TaskRequest> requests, List<Integer> group, TaskResponse[] out) {
        List<SoftPrompt> prompts = new ArrayList<>();
        List<long[]> ids = new ArrayList<>();
        List<LabelWords> words = new ArrayList<>();
        for (int i : group) {
            TaskRequest r = requests.get(i);
            ClassifyEncoder encoder = encoders.get(r.task());
            prompts.add(bank.prompt(r.task()));
            ids.add(encoder.ids(r.text()));
            words.add(encoder.words());
        }
        List<Prediction> predictions = new Classifier(model).predict(prompts, ids, words);
        for (int k = 0; k < group.size(); k++) out[group.get(k)] = new TaskResponse(requests.get(group.get(k)), predictions.get(k), null, null);
    }

    private void generate(List<TaskRequest> requests, List<Integer> group, TaskResponse[] out) {
        List<SoftPrompt> prompts = new ArrayList<>();
        List<long[]> ids = new ArrayList<>();
        for (int i : group) {
            prompts.add(bank.prompt(requests.get(i).task()));
            ids.add(tokenizer.encode(requests.get(i).text()));
        }
        GenerationResult result = PromptedGeneration.generate(model, prompts, ids, generation, TokenListener.NONE);
        for (int k = 0; k < group.size(); k++) {
            long[] row = result.row(k);
            out[group.get(k)] = new TaskResponse(requests.get(group.get(k)), null, tokenizer.decode(row, true), row);
        }
    }

    /** Request indices of one kind, grouped by their prompt's shape (prefix or not, number of virtual tokens). */
    private Map<SoftPrompt.Shape, List<Integer>> byPromptShape(List<TaskRequest> requests, boolean classification) {
        Map<SoftPrompt.Shape, List<Integer>> groups = new LinkedHashMap<>();
        for (int i = 0; i < requests.size(); i++) {
            String task = requests.get(i).task();
            if (encoders.containsKey(task) != classification) continue;
            groups.computeIfAbsent(bank.prompt(task).shape(), k -> new ArrayList<>()).add(i);
        }
        return groups;
    }
}
