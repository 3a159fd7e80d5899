package org.bloomtune.serve.openai;

import com.google.gson.JsonObject;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.bloomtune.generate.Generator;
import org.bloomtune.model.BloomModel;
import org.bloomtune.serve.BatchScheduler;
import org.bloomtune.serve.SchedulerOptions;
import org.bloomtune.serve.ServedBank;
import org.bloomtune.serve.ServerMetrics;
import org.bloomtune.tensor.ProcessMemory;
import org.bloomtune.tokenizer.Tokenizer;

import java.io.IOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * An OpenAI-compatible HTTP server over a prompt bank, on the JDK's HTTP server with a virtual
 * thread per exchange: {@code /v1/models}, {@code /v1/completions}, {@code /v1/chat/completions},
 * {@code /v1/classify}, {@code /v1/adapters} (add and remove tasks while serving), {@code /health}
 * and {@code /metrics} (Prometheus). Every answer is produced by one {@link BatchScheduler}, which
 * batches all tasks' requests together. Bad requests get OpenAI's error object; nothing a client
 * sends stops the server.
 */
public final class OpenAiServer implements AutoCloseable {
    /**
     * @param host                 address to listen on (127.0.0.1 unless told otherwise)
     * @param port                 port; 0 picks a free one
     * @param adminToken           bearer token {@code /v1/adapters} requires; null: no token needed
     * @param maxBodyBytes         larger request bodies are refused (413)
     * @param maxN                 largest {@code n}
     * @param maxChoices           prompts × n per request at most
     * @param defaultChatMaxTokens chat's new-token limit when the request sets none
     */
    public record Options(String host, int port, String adminToken, long maxBodyBytes, int maxN, int maxChoices, int defaultChatMaxTokens,
                          SchedulerOptions scheduler) {
        public Options {
            if (port < 0 || port > 65535) throw new IllegalArgumentException("port must lie in [0, 65535], got " + port);
            if (maxBodyBytes < 1024) throw new IllegalArgumentException("the body limit must be at least 1024 bytes, got " + maxBodyBytes);
            if (maxN < 1 || maxChoices < 1) throw new IllegalArgumentException("n and the choices per request must be at least 1");
            if (defaultChatMaxTokens < 1) throw new IllegalArgumentException("the chat token default must be at least 1");
        }

        public static Options defaults() {
            return new Options("127.0.0.1", 8080, null, 1 << 20, 16, 64, 256, SchedulerOptions.defaults());
        }

        public Options withPort(int p) { return new Options(host, p, adminToken, maxBodyBytes, maxN, maxChoices, defaultChatMaxTokens, scheduler); }

        public Options withAdminToken(String token) {
            return new Options(host, port, token, maxBodyBytes, maxN, maxChoices, defaultChatMaxTokens, scheduler);
        }

        public Options withScheduler(SchedulerOptions s) {
            return new Options(host, port, adminToken, maxBodyBytes, maxN, maxChoices, defaultChatMaxTokens, s);
        }

        int contextLength() { return scheduler.contextLength(); }

        Duration timeout() { return scheduler.timeout(); }
    }

    private static final System.Logger LOG = System.getLogger(OpenAiServer.class.getName());
    private static final double[] LATENCY_BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

    private final HttpServer http;
    private final ExecutorService executor;
    private final ServerContext context;
    private final CompletionsEndpoint completions;
    private final ChatCompletionsEndpoint chat;
    private volatile boolean draining;

    private OpenAiServer(HttpServer http, ExecutorService executor, ServerContext context) {
        this.http = http;
        this.executor = executor;
        this.context = context;
        this.completions = new CompletionsEndpoint(context);
        this.chat = new ChatCompletionsEndpoint(context);
    }

    /**
     * Starts serving {@code bank} on {@code model}; the server owns neither (close them after
     * {@link #close}). The model first runs a warm-up generation ({@link Generator#warmUp}), so that
     * the first client does not wait for the process's one-time set-up of the decode path. Fails
     * with a message naming the address when it cannot listen.
     */
    public static OpenAiServer start(BloomModel model, Tokenizer tokenizer, ServedBank bank, Options options) {
        new Generator(model).warmUp(1);
        ServerMetrics metrics = new ServerMetrics();
        metrics.gauge("process_resident_memory_bytes", "resident memory of the server process", ProcessMemory::residentBytes);
        BatchScheduler scheduler = new BatchScheduler(model, tokenizer, bank, options.scheduler(), metrics);
        HttpServer http;
        try {
            http = HttpServer.create(new InetSocketAddress(options.host(), options.port()), 128);
        } catch (BindException e) {
            scheduler.close();
            throw new IllegalArgumentException("cannot listen on " + options.host() + ":" + options.port() + " (" + e.getMessage()
                    + "): choose another --port or --host");
        } catch (IOException e) {
            scheduler.close();
            throw new IllegalArgumentException("cannot listen on " + options.host() + ":" + options.port() + ": " + e.getMessage());
        }
        ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
        http.setExecutor(executor);
        OpenAiServer server = new OpenAiServer(http, executor, new ServerContext(scheduler, bank, tokenizer, options, metrics,
                model.config().eosTokenId(), model.config().vocabSize()));
        http.createContext("/", server::exchange);
        http.start();
        return server;
    }

    public int port() { return http.getAddress().getPort(); }

    /** {@code http://HOST:PORT/v1}: what OpenAI clients take as their base URL. */
    public URI baseUri() {
        return URI.create("http://" + http.getAddress().getHostString() + ":" + port() + "/v1");
    }

    public ServerMetrics metrics() { return context.metrics(); }

    // ---- routing -------------------------------------------------------------------------------------

    private void exchange(HttpExchange ex) {
        long started = System.nanoTime();
        String endpoint = endpoint(ex.getRequestURI().getPath());
        int status;
        try (ex) {
            try {
                status = route(ex, endpoint);
            } catch (RuntimeException e) {
                ApiException api = ServerContext.toApi(e);
                if (api.status() == 500) LOG.log(System.Logger.Level.ERROR, "request to " + endpoint + " failed", e);
                Exchanges.sendError(ex, api);
                status = api.status();
            }
        } catch (IOException e) {
            status = 499;                                  // the client went away mid-answer
        }
        context.metrics().count("bloomtune_requests_total", "HTTP requests by endpoint and status", "endpoint", endpoint, "status",
                Integer.toString(status));
        context.metrics().observe("bloomtune_request_duration_seconds", "time to the last byte of the answer", LATENCY_BUCKETS,
                (System.nanoTime() - started) / 1e9, "endpoint", endpoint);
    }

    private int route(HttpExchange ex, String endpoint) throws IOException {
        String method = ex.getRequestMethod();
        switch (endpoint) {
            case "/health" -> {
                allow(method, "GET");
                Exchanges.sendJson(ex, draining ? 503 : 200, status(draining ? "shutting_down" : "ok"));
                return draining ? 503 : 200;
            }
            case "/metrics" -> {
                allow(method, "GET");
                Exchanges.send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", context.metrics().render());
            }
            case "/v1/models" -> {
                allow(method, "GET");
                Exchanges.sendJson(ex, 200, ModelsEndpoint.list(context.bank()));
            }
            case "/v1/completions" -> {
                allow(method, "POST");
                refuseWhileDraining();
                completions.handle(ex, Exchanges.jsonBody(ex, context.options().maxBodyBytes()));
            }
            case "/v1/chat/completions" -> {
                allow(method, "POST");
                refuseWhileDraining();
                chat.handle(ex, Exchanges.jsonBody(ex, context.options().maxBodyBytes()));
            }
            case "/v1/classify" -> {
                allow(method, "POST");
                refuseWhileDraining();
                Exchanges.sendJson(ex, 200, ClassifyEndpoint.answer(context, Exchanges.jsonBody(ex, context.options().maxBodyBytes())));
            }
            case "/v1/adapters" -> adapters(ex, method);
            default -> throw new ApiException(404, "invalid_request_error", null, "unknown_url", "no endpoint " + method + " "
                    + ex.getRequestURI().getPath() + " (see GET /v1/models, POST /v1/completions, /v1/chat/completions, /v1/classify)");
        }
        return 200;
    }

    /** Metric label for a path: the known endpoints, {@code /v1/adapters} for its sub-paths, "other" for the rest. */
    private static String endpoint(String path) {
        String p = path.length() > 1 && path.endsWith("/") ? path.substring(0, path.length() - 1) : path;
        if (p.startsWith("/v1/adapters")) return "/v1/adapters";
        return switch (p) {
            case "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/classify" -> p;
            default -> "other";
        };
    }

    private static void allow(String method, String allowed) {
        if (!method.equals(allowed)) {
            throw new ApiException(405, "invalid_request_error", null, "method_not_allowed", method + " is not allowed here; use " + allowed);
        }
    }

    private void refuseWhileDraining() {
        if (draining) throw new BatchScheduler.ShuttingDownException();
    }

    /** {@code POST /v1/adapters {"name", "path"}} adds a task; {@code DELETE /v1/adapters/NAME} removes one. */
    private void adapters(HttpExchange ex, String method) throws IOException {
        authorize(ex);
        String path = ex.getRequestURI().getPath();
        String rest = path.substring("/v1/adapters".length()).replaceAll("^/+|/+$", "");
        if (method.equals("POST") && rest.isEmpty()) {
            JsonObject body = Exchanges.jsonBody(ex, context.options().maxBodyBytes());
            String name = Fields.requiredString(body, "name");
            String dir = Fields.requiredString(body, "path");
            try {
                context.bank().add(name, Path.of(dir));
            } catch (java.nio.file.InvalidPathException e) {
                throw ApiException.invalid("path", "'" + dir + "' is not a path");
            } catch (IllegalArgumentException e) {
                if (e instanceof ServedBank.TaskExistsException) throw e;
                throw ApiException.invalid(e.getMessage().startsWith("task name") ? "name" : "path", e.getMessage());
            }
            JsonObject added = context.bank().list().stream().filter(t -> t.name().equals(name)).findFirst()
                    .map(ModelsEndpoint::model).orElseThrow();
            Exchanges.sendJson(ex, 201, added);
        } else if (method.equals("DELETE") && !rest.isEmpty() && !rest.contains("/")) {
            if (!context.bank().remove(rest)) {
                throw new ApiException(404, "invalid_request_error", "name", "model_not_found", "no task named '" + rest + "'");
            }
            JsonObject gone = new JsonObject();
            gone.addProperty("id", rest);
            gone.addProperty("object", "model");
            gone.addProperty("deleted", true);
            Exchanges.sendJson(ex, 200, gone);
        } else {
            throw new ApiException(405, "invalid_request_error", null, "method_not_allowed",
                    "use POST /v1/adapters {\"name\", \"path\"} or DELETE /v1/adapters/NAME");
        }
    }

    private void authorize(HttpExchange ex) {
        String token = context.options().adminToken();
        if (token == null) return;
        String given = ex.getRequestHeaders().getFirst("Authorization");
        String expected = "Bearer " + token;
        boolean ok = given != null && MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), expected.getBytes(StandardCharsets.UTF_8));
        if (!ok) throw new ApiException(401, "authentication_error", null, "invalid_api_key", "changing the adapters needs the admin token (Authorization: Bearer TOKEN)");
    }

    private static JsonObject status(String s) {
        JsonObject o = new JsonObject();
        o.addProperty("status", s);
        return o;
    }

    // ---- shutdown ------------------------------------------------------------------------------------

    /**
     * Graceful stop: new requests are refused (503, {@code /health} says so), the listening socket
     * closes, requests in flight — streams included — finish within {@code grace}, then the
     * scheduler stops.
     */
    public void stop(Duration grace) {
        draining = true;
        long end = System.nanoTime() + grace.toNanos();
        http.stop((int) Math.max(1, grace.toSeconds()));
        context.scheduler().shutdown(Duration.ofNanos(Math.max(0, end - System.nanoTime())));
        executor.shutdownNow();
    }

    @Override
    public void close() { stop(Duration.ofSeconds(1)); }
}
