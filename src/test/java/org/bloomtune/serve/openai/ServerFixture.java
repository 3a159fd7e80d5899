package org.bloomtune.serve.openai;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.demo.DemoBank;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.serve.PromptBank;
import org.bloomtune.serve.ServedBank;
import org.bloomtune.tokenizer.Tokenizer;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The embedded default model serving the demo bank (poem, chat, sentiment) on 127.0.0.1 at a free
 * port, a plain HTTP client for it, and the answers the library gives for a request alone.
 */
final class ServerFixture implements AutoCloseable {
    static final Path MODEL = Path.of("models/bloom-tiny");

    final BloomModel model;
    final Tokenizer tokenizer;
    final Path bankDir;
    final ServedBank bank;
    final OpenAiServer server;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    ServerFixture(Path dir, OpenAiServer.Options options) {
        model = BloomModel.load(MODEL);
        tokenizer = Tokenizer.load(MODEL.resolve("tokenizer.json"));
        bankDir = DemoBank.write(model, tokenizer, dir.resolve("bank"));
        bank = new ServedBank(model, tokenizer, PromptBank.load(bankDir, model.config()), "bloom-tiny", 256);
        server = OpenAiServer.start(model, tokenizer, bank, options.withPort(0));
    }

    ServerFixture(Path dir) { this(dir, OpenAiServer.Options.defaults()); }

    String base() { return "http://127.0.0.1:" + server.port(); }

    record Reply(int status, String body, java.net.http.HttpHeaders headers) {
        JsonObject json() { return JsonParser.parseString(body).getAsJsonObject(); }

        JsonObject error() { return json().getAsJsonObject("error"); }
    }

    Reply post(String path, String json) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(URI.create(base() + path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8)));
    }

    Reply post(String path, byte[] body) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(URI.create(base() + path)).POST(HttpRequest.BodyPublishers.ofByteArray(body)));
    }

    Reply get(String path) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(URI.create(base() + path)).GET());
    }

    Reply send(HttpRequest.Builder request) throws IOException, InterruptedException {
        HttpResponse<String> r = http.send(request.timeout(Duration.ofSeconds(120)).build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body(), r.headers());
    }

    /** What the library generates for this task and text alone (greedy), as ids. */
    long[] alone(String task, String text, int maxTokens) { return alone(task, text, maxTokens, model.config().eosTokenId()); }

    /** The same with another end-of-sequence id (-1: none, as {@code ignore_eos}). */
    long[] alone(String task, String text, int maxTokens, long eos) {
        long[] ids = tokenizer.encode(text);
        GenerationConfig greedy = GenerationConfig.greedy(maxTokens, eos);
        if (task.equals("bloom-tiny")) return new Generator(model).generate(List.of(ids), greedy, TokenListener.NONE).row(0);
        try (PeftAdapter.Loaded adapter = PeftAdapter.load(bankDir.resolve(task), model.config())) {
            return PromptedGeneration.generate(model, adapter.prompt(), List.of(ids), greedy, TokenListener.NONE).row(0);
        }
    }

    /** The same as text, special tokens skipped, as the server returns it. */
    String aloneText(String task, String text, int maxTokens) { return tokenizer.decode(alone(task, text, maxTokens), true); }

    long metric(String name, String... labels) { return server.metrics().counter(name, labels); }

    @Override
    public void close() {
        server.close();
        bank.close();
        model.close();
    }
}
