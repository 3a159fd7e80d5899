package org.bloomtune.serve;

import org.bloomtune.classify.Verbalizer;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.SoftPrompt;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Several named soft prompts over one frozen model, one per task: the seed's "one model, many
 * tasks". A task with a verbalizer classifies, the others generate. A batch may mix tasks row by
 * row ({@link #rows}), which PEFT cannot do for prompt tuning. On disk a bank is a directory of
 * PEFT adapter directories, one per task (classifiers with their {@code verbalizer.json}), so PEFT
 * can load each task's prompt on its own. The bank owns its prompts.
 */
public final class PromptBank implements AutoCloseable {
    /** One task: its adapter config, prompt, and verbalizer (null for a generation task). */
    private record Task(AdapterConfig config, SoftPrompt prompt, Verbalizer verbalizer) {}

    private final Map<String, Task> tasks = new LinkedHashMap<>();

    /** Adds a generation task; the bank takes ownership of {@code prompt}. */
    public void put(String name, AdapterConfig config, SoftPrompt prompt) { put(name, config, prompt, null); }

    /** Adds a task; the bank takes ownership of {@code prompt}. {@code verbalizer} is null for a generation task. */
    public void put(String name, AdapterConfig config, SoftPrompt prompt, Verbalizer verbalizer) {
        checkName(name);
        if (tasks.containsKey(name)) throw new IllegalArgumentException("the prompt bank already has a task named '" + name + "'");
        if (prompt.type() != config.peftType() || prompt.numVirtualTokens() != config.numVirtualTokens() || prompt.tokenDim() != config.promptWidth()) {
            throw new IllegalArgumentException("prompt '" + name + "' does not match its adapter config");
        }
        tasks.put(name, new Task(config, prompt, verbalizer));
    }

    public Set<String> names() { return Collections.unmodifiableSet(tasks.keySet()); }

    public boolean contains(String name) { return tasks.containsKey(name); }

    /** The task's soft prompt (owned by the bank). */
    public SoftPrompt prompt(String name) { return task(name).prompt(); }

    public AdapterConfig config(String name) { return task(name).config(); }

    /** The task's verbalizer when it classifies; empty when it generates. */
    public Optional<Verbalizer> verbalizer(String name) { return Optional.ofNullable(task(name).verbalizer()); }

    /**
     * Takes task {@code name} out of the bank: the caller now owns its prompt. Returns its adapter
     * config, prompt and verbalizer (null for a generation task).
     */
    public Entry remove(String name) {
        Task t = task(name);
        tasks.remove(name);
        return new Entry(t.config(), t.prompt(), t.verbalizer());
    }

    /** A task taken out of the bank. */
    public record Entry(AdapterConfig config, SoftPrompt prompt, Verbalizer verbalizer) {}

    /** The prompt of each row of a mixed batch: {@code names.get(b)} names row b's task. */
    public List<SoftPrompt> rows(List<String> names) {
        List<SoftPrompt> out = new ArrayList<>(names.size());
        for (String n : names) out.add(prompt(n));
        return out;
    }

    /**
     * Loads every adapter directory under {@code dir}, named after its directory, with its
     * verbalizer if it has one, checking each fits {@code model} (null: no check, e.g. when only
     * managing the bank's files).
     */
    public static PromptBank load(Path dir, BloomConfig model) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a prompt bank directory");
        PromptBank bank = new PromptBank();
        try (Stream<Path> children = Files.list(dir)) {
            for (Path child : children.filter(p -> Files.isRegularFile(p.resolve(AdapterConfig.FILE))).sorted().toList()) {
                Path v = child.resolve(Verbalizer.FILE);
                Verbalizer verbalizer = Files.isRegularFile(v) ? Verbalizer.load(v) : null;
                PeftAdapter.Loaded a = model == null ? PeftAdapter.loadFolded(child) : PeftAdapter.loadFolded(child, model);
                bank.put(child.getFileName().toString(), a.config(), a.prompt(), verbalizer);
            }
        } catch (IOException e) {
            bank.close();
            throw new UncheckedIOException("cannot list " + dir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            bank.close();
            throw e;
        }
        if (bank.tasks.isEmpty()) throw new IllegalArgumentException(dir + ": no adapter directories in the prompt bank");
        return bank;
    }

    /** Writes each task as a PEFT adapter in {@code dir/<name>/}, classifiers with their verbalizer. */
    public void save(Path dir) {
        tasks.forEach((name, t) -> {
            PeftAdapter.save(dir.resolve(name), t.config(), t.prompt());
            if (t.verbalizer() != null) AtomicFiles.writeString(dir.resolve(name).resolve(Verbalizer.FILE), t.verbalizer().toJson());
        });
    }

    private Task task(String name) {
        Task t = tasks.get(name);
        if (t == null) throw new IllegalArgumentException("no task named '" + name + "' in the prompt bank (has " + tasks.keySet() + ")");
        return t;
    }

    static void checkName(String name) {
        if (name == null || name.isEmpty() || name.startsWith(".") || !name.matches("[A-Za-z0-9._-]+")) {
            throw new IllegalArgumentException("task name '" + name + "' must be letters, digits, '.', '_' or '-' and not start with '.'");
        }
    }

    @Override
    public void close() {
        tasks.values().forEach(t -> t.prompt().close());
        tasks.clear();
    }
}
