package org.bloomtune.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.serve.MultiTaskServer;
import org.bloomtune.serve.TaskBank;
import org.bloomtune.serve.TaskRequest;
import org.bloomtune.serve.TaskResponse;
import org.bloomtune.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Serves requests for several tasks from one loaded model and a prompt bank, in mixed batches. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Answer JSON-lines requests {\"task\": NAME, \"text\": ...} for the tasks of a prompt bank, from one loaded "
                + "model. Tasks with a verbalizer.json classify; the others continue the text (greedy). Requests are answered "
                + "in mixed batches of --batch-size, one JSON line each, in order."})
final class ServeCommand implements Runnable {
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--bank", required = true, paramLabel = "DIR", description = "prompt bank: one adapter directory per task") Path bankDir;
    @Option(names = "--requests", defaultValue = "-", paramLabel = "FILE", description = "JSON lines; - reads stdin (default)") String requests;
    @Option(names = "--tokenizer", paramLabel = "tokenizer.json", description = "default: MODEL/tokenizer.json") Path tokenizer;
    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "B") int batchSize;
    @Option(names = "--max-new-tokens", defaultValue = "32", paramLabel = "N") int maxNewTokens;
    @Option(names = "--max-length", defaultValue = "256", paramLabel = "N", description = "longest classification pattern") int maxLength;

    @Override
    public void run() {
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : modelOptions.model.resolve("tokenizer.json"));
        try (BloomModel model = modelOptions.load(); TaskBank bank = TaskBank.load(bankDir, model.config());
             BufferedReader in = open()) {
            GenerationConfig greedy = GenerationConfig.greedy(maxNewTokens, model.config().eosTokenId());
            MultiTaskServer server = new MultiTaskServer(model, tok, bank, greedy, maxLength);
            List<TaskRequest> pending = new ArrayList<>();
            int line = 0;
            for (String text; (text = in.readLine()) != null; ) {
                line++;
                if (text.isBlank()) continue;
                pending.add(parse(text, line));
                if (pending.size() == batchSize) flush(server, pending);
            }
            flush(server, pending);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + requests + ": " + e.getMessage(), e);
        }
    }

    private BufferedReader open() throws IOException {
        if (requests.equals("-")) return new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        return Files.newBufferedReader(Path.of(requests), StandardCharsets.UTF_8);
    }

    private TaskRequest parse(String text, int line) {
        String where = (requests.equals("-") ? "stdin" : requests) + ": line " + line;
        try {
            JsonElement e = JsonParser.parseString(text);
            if (!e.isJsonObject()) throw new IllegalArgumentException(where + ": not a JSON object");
            JsonObject o = e.getAsJsonObject();
            return new TaskRequest(string(o, "task", where), string(o, "text", where));
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(where + ": invalid JSON", e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage().startsWith(where) ? e.getMessage() : where + ": " + e.getMessage(), e);
        }
    }

    private static String string(JsonObject o, String field, String where) {
        JsonElement v = o.get(field);
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException(where + ": missing string field " + field);
        }
        return v.getAsString();
    }

    private void flush(MultiTaskServer server, List<TaskRequest> pending) {
        if (pending.isEmpty()) return;
        for (TaskResponse r : server.serve(pending)) System.out.println(GSON.toJson(json(r)));
        System.out.flush();
        pending.clear();
    }

    private static JsonObject json(TaskResponse r) {
        JsonObject o = new JsonObject();
        o.addProperty("task", r.request().task());
        if (r.isClassification()) {
            o.addProperty("label", r.prediction().labelName());
            o.add("probabilities", r.prediction().probabilitiesJson());
        } else {
            o.addProperty("generated", r.generated());
            com.google.gson.JsonArray ids = new com.google.gson.JsonArray();
            for (long id : r.generatedIds()) ids.add(id);
            o.add("generated_ids", ids);
        }
        return o;
    }
}
