package org.bloomtune.serve;

import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tasks a running server answers for — a prompt bank that changes while requests are served —
 * plus the bare model under its own name. Requests hold a {@link Lease} on their task from
 * admission until the scheduler no longer needs its prompt (after prefill, or after classifying),
 * so a task removed mid-flight frees its prompt only once its requests are through. Thread-safe.
 */
public final class ServedBank implements AutoCloseable {
    /** What {@code GET /v1/models} lists. */
    public record TaskInfo(String name, boolean classifies, int virtualTokens, Instant added) {}

    /** One task's prompt (null for the bare model) and, when it classifies, its encoder. */
    static final class Task {
        final String name;
        final SoftPrompt prompt;
        final ClassifyEncoder encoder;
        final Instant added = Instant.now();
        private int leases;
        private boolean removed;

        Task(String name, SoftPrompt prompt, ClassifyEncoder encoder) {
            this.name = name;
            this.prompt = prompt;
            this.encoder = encoder;
        }

        int virtualTokens() { return prompt == null ? 0 : prompt.numVirtualTokens(); }

        SoftPrompt.Shape shape() { return prompt == null ? SoftPrompt.Shape.NONE : prompt.shape(); }

        TaskInfo info() { return new TaskInfo(name, encoder != null, virtualTokens(), added); }
    }

    /** A request's hold on its task; closing it (once) lets a removed task's prompt go. */
    public final class Lease implements AutoCloseable {
        final Task task;
        private boolean closed;

        private Lease(Task task) { this.task = task; }

        public String name() { return task.name; }

        public boolean classifies() { return task.encoder != null; }

        public int virtualTokens() { return task.virtualTokens(); }

        /** Rows of one shape prefill together (see {@link SoftPrompt#shape()}). */
        public SoftPrompt.Shape shape() { return task.shape(); }

        @Override
        public void close() {
            synchronized (ServedBank.this) {
                if (closed) return;
                closed = true;
                task.leases--;
                if (task.removed && task.leases == 0) free(task);
            }
        }
    }

    private final BloomModel model;
    private final Tokenizer tokenizer;
    private final int maxLength;
    private final String modelName;
    private final Map<String, Task> tasks = new LinkedHashMap<>();

    /**
     * Serves {@code bank}'s tasks (the bank's prompts move here; the bank is left empty) and the bare
     * model as {@code modelName}. {@code maxLength} cuts classification patterns as {@code classify} does.
     */
    public ServedBank(BloomModel model, Tokenizer tokenizer, PromptBank bank, String modelName, int maxLength) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.modelName = modelName;
        tasks.put(modelName, new Task(modelName, null, null));
        if (bank != null) {
            for (String name : List.copyOf(bank.names())) {
                PromptBank.Entry e = bank.remove(name);
                if (tasks.containsKey(name)) {
                    e.prompt().close();
                    throw new IllegalArgumentException("task '" + name + "' has the bare model's name: rename its directory or pass another --served-model-name");
                }
                tasks.put(name, new Task(name, e.prompt(), encoder(e.verbalizer())));
            }
        }
    }

    public String modelName() { return modelName; }

    public synchronized List<TaskInfo> list() {
        List<TaskInfo> out = new ArrayList<>();
        for (Task t : tasks.values()) out.add(t.info());
        return out;
    }

    /** Whether task {@code name} classifies; {@link UnknownTaskException} when there is none. */
    public synchronized boolean classifies(String name) {
        Task t = tasks.get(name);
        if (t == null) throw new UnknownTaskException(name, tasks.keySet());
        return t.encoder != null;
    }

    /** A hold on task {@code name}; {@link UnknownTaskException} when there is none. */
    public synchronized Lease acquire(String name) {
        Task t = tasks.get(name);
        if (t == null) throw new UnknownTaskException(name, tasks.keySet());
        t.leases++;
        return new Lease(t);
    }

    /**
     * Adds the PEFT adapter in {@code adapterDir} (with its {@code verbalizer.json}, if any) as
     * task {@code name}. The adapter is read and checked against the model before the bank changes.
     */
    public void add(String name, Path adapterDir) {
        PromptBank.checkName(name);
        synchronized (this) {
            if (tasks.containsKey(name)) throw new TaskExistsException(name);
        }
        if (!Files.isDirectory(adapterDir)) throw new IllegalArgumentException(adapterDir + ": no such adapter directory");
        Path v = adapterDir.resolve(Verbalizer.FILE);
        Verbalizer verbalizer = Files.isRegularFile(v) ? Verbalizer.load(v) : null;
        PeftAdapter.Loaded loaded = PeftAdapter.loadFolded(adapterDir, model.config());
        AdapterConfig config = loaded.config();
        if (config.numVirtualTokens() != loaded.prompt().numVirtualTokens()) {
            loaded.close();
            throw new IllegalArgumentException(adapterDir + ": the prompt does not match its adapter config");
        }
        try {
            Task task = new Task(name, loaded.prompt(), encoder(verbalizer));
            synchronized (this) {
                if (tasks.containsKey(name)) throw new TaskExistsException(name);
                tasks.put(name, task);
            }
        } catch (RuntimeException e) {
            loaded.prompt().close();
            throw e;
        }
    }

    /**
     * Removes task {@code name}: new requests no longer find it; requests already admitted finish,
     * and its prompt is freed when the last of them lets go. False when there is no such task.
     */
    public synchronized boolean remove(String name) {
        if (name.equals(modelName)) throw new IllegalArgumentException("the bare model '" + name + "' cannot be removed");
        Task t = tasks.remove(name);
        if (t == null) return false;
        t.removed = true;
        if (t.leases == 0) free(t);
        return true;
    }

    private ClassifyEncoder encoder(Verbalizer verbalizer) {
        if (verbalizer == null) return null;
        return new ClassifyEncoder(tokenizer, LabelWords.encode(verbalizer, tokenizer, model.config().vocabSize()), maxLength);
    }

    private static void free(Task t) {
        if (t.prompt != null) t.prompt.close();
    }

    @Override
    public synchronized void close() {
        for (Task t : tasks.values()) {
            t.removed = true;
            if (t.leases == 0) free(t);
        }
        tasks.clear();
    }

    /** No task of that name. */
    public static final class UnknownTaskException extends IllegalArgumentException {
        UnknownTaskException(String name, java.util.Collection<String> known) {
            super("no model or task named '" + name + "' (serving " + String.join(", ", known) + ")");
        }
    }

    /** A task of that name already exists. */
    public static final class TaskExistsException extends IllegalArgumentException {
        TaskExistsException(String name) {
            super("a task named '" + name + "' is already served: DELETE it first");
        }
    }
}
