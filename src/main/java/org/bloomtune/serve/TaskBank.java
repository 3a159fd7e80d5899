package org.bloomtune.serve;

import org.bloomtune.classify.Verbalizer;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PromptBank;
import org.bloomtune.peft.SoftPrompt;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A {@link PromptBank} whose tasks may be classifiers: a task whose adapter directory holds a
 * {@code verbalizer.json} classifies, the others generate. On disk it is the prompt bank's layout
 * (one PEFT adapter directory per task), so PEFT can load each task's prompt on its own.
 */
public final class TaskBank implements AutoCloseable {
    private final PromptBank prompts;
    private final Map<String, Verbalizer> verbalizers = new HashMap<>();

    private TaskBank(PromptBank prompts) {
        this.prompts = prompts;
    }

    public static TaskBank empty() { return new TaskBank(new PromptBank()); }

    /** Loads every task under {@code dir} (see {@link PromptBank#load}) with its verbalizer, if any. */
    public static TaskBank load(Path dir, BloomConfig model) {
        TaskBank bank = new TaskBank(PromptBank.load(dir, model));
        try {
            for (String name : bank.names()) {
                Path v = dir.resolve(name).resolve(Verbalizer.FILE);
                if (Files.isRegularFile(v)) bank.verbalizers.put(name, Verbalizer.load(v));
            }
            return bank;
        } catch (RuntimeException e) {
            bank.close();
            throw e;
        }
    }

    /** Adds a task; the bank owns {@code prompt}. {@code verbalizer} is null for a generation task. */
    public void put(String name, AdapterConfig config, SoftPrompt prompt, Verbalizer verbalizer) {
        prompts.put(name, config, prompt);
        if (verbalizer != null) verbalizers.put(name, verbalizer);
    }

    public Set<String> names() { return prompts.names(); }

    public SoftPrompt prompt(String task) { return prompts.get(task); }

    public AdapterConfig config(String task) { return prompts.config(task); }

    /** The task's verbalizer when it classifies; empty when it generates. */
    public Optional<Verbalizer> verbalizer(String task) {
        prompts.get(task);                                   // unknown names fail, naming the bank's tasks
        return Optional.ofNullable(verbalizers.get(task));
    }

    /** Writes each task as a PEFT adapter directory, classifiers with their verbalizer. */
    public void save(Path dir) {
        prompts.save(dir);
        verbalizers.forEach((name, v) -> AtomicFiles.writeString(dir.resolve(name).resolve(Verbalizer.FILE), v.toJson()));
    }

    @Override
    public void close() { prompts.close(); }
}
