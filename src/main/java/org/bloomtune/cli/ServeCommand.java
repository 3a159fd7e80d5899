package org.bloomtune.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.io.Json;
import org.bloomtune.io.TextFiles;
import org.bloomtune.model.BloomModel;
import org.bloomtune.serve.MultiTaskServer;
import org.bloomtune.serve.SchedulerOptions;
import org.bloomtune.serve.ServedBank;
import org.bloomtune.serve.openai.OpenAiServer;
import org.bloomtune.serve.PromptBank;
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
import java.util.Iterator;
import java.util.List;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * Serves the tasks of a prompt bank from one loaded model: an OpenAI-compatible HTTP server (the
 * default), or JSON lines from a file or stdin ({@code --requests}).
 */
@Command(name = "serve", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = {"Serve a prompt bank's tasks from one loaded model. By default, after a two-token warm-up generation, an OpenAI-compatible HTTP server on --host:--port "
                + "(/v1/models, /v1/completions, /v1/chat/completions, /v1/classify, /v1/adapters, /health, /metrics) that batches "
                + "requests of all tasks together as they come; SIGTERM or Ctrl-C stops it after the requests in flight. "
                + "With --requests: answer JSON lines {\"task\": NAME, \"text\": ...} instead (tasks with a verbalizer.json "
                + "classify, the others continue the text greedily), in mixed batches of --batch-size, one JSON line each, in order."})
final class ServeCommand implements Runnable {
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--bank", paramLabel = "DIR", description = "prompt bank: one adapter directory per task (required with --requests)") Path bankDir;
    @Option(names = "--requests", paramLabel = "FILE", description = "answer JSON lines {\"task\": NAME, \"text\": ...} from FILE (- for stdin) instead of serving HTTP") String requests;
    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "ADDR", description = "HTTP: address to listen on") String host;
    @Option(names = "--port", defaultValue = "8080", paramLabel = "PORT", description = "HTTP: port (0: any free port)") int port;
    @Option(names = "--admin-token", paramLabel = "TOKEN", description = "HTTP: bearer token POST/DELETE /v1/adapters require (default: none needed)") String adminToken;
    @Option(names = "--served-model-name", paramLabel = "NAME", description = "HTTP: the bare model's name in /v1/models (default: the model directory's name or hub id)") String servedName;
    @Option(names = "--max-batch-size", defaultValue = "16", paramLabel = "B", description = "HTTP: rows decoded together at most") int maxBatchRows;
    @Option(names = "--max-queue", defaultValue = "256", paramLabel = "N", description = "HTTP: requests waiting at most; more get 429") int maxQueue;
    @Option(names = "--request-timeout", defaultValue = "300", paramLabel = "SECONDS", description = "HTTP: a request still running after this fails") int requestTimeout;
    @Option(names = "--context-length", defaultValue = "2048", paramLabel = "N", description = "HTTP: virtual + prompt + new tokens at most (BLOOM was trained on 2048)") int contextLength;
    @Option(names = "--max-body", defaultValue = "1048576", paramLabel = "BYTES", description = "HTTP: larger request bodies get 413") long maxBody;
    @Option(names = "--shutdown-grace", defaultValue = "30", paramLabel = "SECONDS", description = "HTTP: on SIGTERM, time the requests in flight get to finish") int shutdownGrace;
    @Option(names = "--tokenizer", paramLabel = "tokenizer.json", description = "tokenizer file (default: MODEL/tokenizer.json)") Path tokenizer;
    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "B", description = "requests answered together (mixed tasks)") int batchSize;
    @Option(names = "--max-new-tokens", defaultValue = "32", paramLabel = "N", description = "new tokens per generation request at most") int maxNewTokens;
    @Option(names = "--max-length", defaultValue = "256", paramLabel = "N", description = "longest request in tokens (classification patterns are cut to it)") int maxLength;

    /** One input line: a request to answer, or why it cannot be answered (reported in its place). */
    private record Line(int number, TaskRequest request, String error) {}

    @Override
    public void run() {
        if (requests != null) jsonLines();
        else http();
    }

    /** The HTTP server, until SIGTERM or SIGINT; then a graceful stop. */
    private void http() {
        SchedulerOptions scheduling = new SchedulerOptions(Flags.atLeast(1, maxBatchRows, "--max-batch-size"), Flags.atLeast(1, maxQueue, "--max-queue"),
                Duration.ofSeconds(Flags.atLeast(1, requestTimeout, "--request-timeout")), Flags.atLeast(2, contextLength, "--context-length"));
        if (shutdownGrace < 0) throw new IllegalArgumentException("--shutdown-grace must be >= 0, got " + shutdownGrace);
        OpenAiServer.Options options = new OpenAiServer.Options(host, port, adminToken, maxBody, 16, 64, 256, scheduling);
        Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : modelOptions.dir().resolve("tokenizer.json"));
        CountDownLatch stop = new CountDownLatch(1);
        Interrupts.stopWith(stop::countDown);
        try (BloomModel model = modelOptions.loadForInference();
             ServedBank bank = new ServedBank(model, tok, bankDir == null ? null : PromptBank.load(bankDir, model.config()), servedName(), maxLength);
             OpenAiServer server = OpenAiServer.start(model, tok, bank, options)) {
            System.out.println("serving " + String.join(", ", bank.list().stream().map(ServedBank.TaskInfo::name).toList()) + " on "
                    + server.baseUri() + " (SIGTERM or Ctrl-C stops)");
            System.out.flush();
            stop.await();
            System.out.println("stopping: finishing the requests in flight (up to " + shutdownGrace + " s)");
            server.stop(Duration.ofSeconds(shutdownGrace));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        System.out.println("stopped");
    }

    private String servedName() {
        if (servedName != null) return servedName;
        Path local = Path.of(modelOptions.model);
        return Files.isDirectory(local) && local.getFileName() != null ? local.toAbsolutePath().normalize().getFileName().toString() : modelOptions.model;
    }

    private void jsonLines() {
        if (bankDir == null) throw new IllegalArgumentException("--requests needs --bank");
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : modelOptions.dir().resolve("tokenizer.json"));
        int bad = 0;
        try (BloomModel model = modelOptions.loadForInference(); PromptBank bank = PromptBank.load(bankDir, model.config());
             BufferedReader in = open()) {
            GenerationConfig greedy = GenerationConfig.greedy(maxNewTokens, model.config().eosTokenId());
            MultiTaskServer server = new MultiTaskServer(model, tok, bank, greedy, maxLength);
            List<Line> pending = new ArrayList<>();
            int number = 0;
            for (String text; (text = in.readLine()) != null; ) {
                number++;
                if (text.isBlank()) continue;
                Line line = parse(text, number, bank, tok);
                if (line.error() != null) bad++;
                pending.add(line);
                if (pending.size() == batchSize) flush(server, pending);
            }
            flush(server, pending);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + requests + ": " + e.getMessage(), e);
        }
        if (bad > 0) throw new IllegalArgumentException(source() + ": " + bad + " bad request line(s), answered in place with an error");
    }

    private BufferedReader open() throws IOException {
        if (requests.equals("-")) return new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Path file = Path.of(requests);
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException("--requests: " + file + ": no such file");
        return new BufferedReader(new java.io.StringReader(TextFiles.readUtf8(file)));
    }

    private String source() { return requests.equals("-") ? "stdin" : requests; }

    private Line parse(String text, int number, PromptBank bank, Tokenizer tok) {
        String where = source() + ": line " + number;
        try {
            JsonElement e = Json.parse(text, where);
            if (!e.isJsonObject()) throw new IllegalArgumentException(where + ": expected a JSON object {task, text}, found " + Json.kind(e));
            JsonObject o = e.getAsJsonObject();
            String task = string(o, "task", where);
            String body = string(o, "text", where);
            if (!bank.names().contains(task)) throw new IllegalArgumentException(where + ": unknown task '" + task + "' (the bank has " + bank.names() + ")");
            if (bank.verbalizer(task).isEmpty() && tok.encode(body).length > maxLength) {
                throw new IllegalArgumentException(where + ": the text is over --max-length " + maxLength + " tokens");
            }
            return new Line(number, new TaskRequest(task, body), null);
        } catch (IllegalArgumentException e) {
            String message = e.getMessage().startsWith(where) ? e.getMessage() : where + ": " + e.getMessage();
            System.err.println("bloomtune serve: " + message);
            return new Line(number, null, message);
        }
    }

    private static String string(JsonObject o, String field, String where) {
        JsonElement v = o.get(field);
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException(where + ": missing string field " + field);
        }
        if (v.getAsString().isEmpty()) throw new IllegalArgumentException(where + ": field " + field + " is empty");
        return v.getAsString();
    }

    private void flush(MultiTaskServer server, List<Line> pending) {
        if (pending.isEmpty()) return;
        List<TaskRequest> good = pending.stream().filter(l -> l.request() != null).map(Line::request).toList();
        Iterator<TaskResponse> answers = good.isEmpty() ? java.util.Collections.emptyIterator() : server.serve(good).iterator();
        for (Line l : pending) System.out.println(GSON.toJson(l.request() != null ? json(answers.next()) : error(l)));
        System.out.flush();
        pending.clear();
    }

    private static JsonObject error(Line l) {
        JsonObject o = new JsonObject();
        o.addProperty("line", l.number());
        o.addProperty("error", l.error());
        return o;
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
