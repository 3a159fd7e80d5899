package org.bloomtune.peft;

import org.bloomtune.model.BloomConfig;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Several named soft prompts over one frozen model: one per task. A batch may mix them row by row
 * ({@link #rows}), which PEFT cannot do for prompt tuning. On disk a bank is a directory holding
 * one PEFT adapter directory per name. The bank owns its prompts.
 */
public final class PromptBank implements AutoCloseable {
    private final Map<String, PeftAdapter.Loaded> prompts = new LinkedHashMap<>();

    /** Adds {@code prompt} under {@code name}; the bank takes ownership. */
    public void put(String name, AdapterConfig config, SoftPrompt prompt) {
        checkName(name);
        if (prompts.containsKey(name)) throw new IllegalArgumentException("prompt bank already has a prompt named '" + name + "'");
        if (prompt.numVirtualTokens() != config.numVirtualTokens() || prompt.tokenDim() != config.tokenDim()) {
            throw new IllegalArgumentException("prompt '" + name + "' does not match its adapter config");
        }
        prompts.put(name, new PeftAdapter.Loaded(config, prompt));
    }

    public SoftPrompt get(String name) { return entry(name).prompt(); }

    public AdapterConfig config(String name) { return entry(name).config(); }

    public Set<String> names() { return Collections.unmodifiableSet(prompts.keySet()); }

    /** The prompt of each row of a mixed batch: {@code names.get(b)} names row b's task. */
    public List<SoftPrompt> rows(List<String> names) {
        List<SoftPrompt> out = new ArrayList<>(names.size());
        for (String n : names) out.add(get(n));
        return out;
    }

    /**
     * Loads every adapter directory under {@code dir}, named after its directory, checking each
     * fits {@code model} (null: no check, e.g. when only managing the bank's files).
     */
    public static PromptBank load(Path dir, BloomConfig model) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": not a prompt bank directory");
        PromptBank bank = new PromptBank();
        try (Stream<Path> children = Files.list(dir)) {
            for (Path child : children.filter(p -> Files.isRegularFile(p.resolve(AdapterConfig.FILE))).sorted().toList()) {
                PeftAdapter.Loaded a = model == null ? PeftAdapter.load(child) : PeftAdapter.load(child, model);
                bank.put(child.getFileName().toString(), a.config(), a.prompt());
            }
        } catch (IOException e) {
            bank.close();
            throw new UncheckedIOException("cannot list " + dir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            bank.close();
            throw e;
        }
        if (bank.prompts.isEmpty()) throw new IllegalArgumentException(dir + ": no adapter directories in the prompt bank");
        return bank;
    }

    /** Writes each prompt as a PEFT adapter in {@code dir/<name>/}. */
    public void save(Path dir) {
        prompts.forEach((name, a) -> PeftAdapter.save(dir.resolve(name), a.config(), a.prompt()));
    }

    private PeftAdapter.Loaded entry(String name) {
        PeftAdapter.Loaded a = prompts.get(name);
        if (a == null) throw new IllegalArgumentException("no prompt named '" + name + "' in the bank (has " + prompts.keySet() + ")");
        return a;
    }

    private static void checkName(String name) {
        if (name == null || name.isEmpty() || name.startsWith(".") || !name.matches("[A-Za-z0-9._-]+")) {
            throw new IllegalArgumentException("prompt name '" + name + "' must be letters, digits, '.', '_' or '-' and not start with '.'");
        }
    }

    @Override
    public void close() {
        prompts.values().forEach(PeftAdapter.Loaded::close);
        prompts.clear();
    }
}
