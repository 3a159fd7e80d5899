package org.bloomtune.serve.openai;

import com.google.gson.JsonObject;
import org.bloomtune.serve.SchedulerOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad input, overload, timeouts, clients that leave and bank changes: each gets the right status
 * and OpenAI's error object, and the server answers the next request as before.
 */
class ServerFaultsTest {
    static final String GOOD = "{\"model\": \"poem\", \"prompt\": \"春天\", \"max_tokens\": 4, \"temperature\": 0}";

    @TempDir
    Path dir;

    record Bad(String what, String body, int status, String type, String param, String code) {}

    @Test
    void badRequestsGetOpenAisErrorObjectAndTheServerCarriesOn() throws Exception {
        List<Bad> cases = List.of(
                new Bad("malformed JSON", "{\"model\": \"poem\", ", 400, "invalid_request_error", null, null),
                new Bad("not an object", "[1, 2]", 400, "invalid_request_error", null, null),
                new Bad("empty body", "", 400, "invalid_request_error", null, null),
                new Bad("no model", "{\"prompt\": \"春天\"}", 400, "invalid_request_error", "model", null),
                new Bad("unknown model", "{\"model\": \"nope\", \"prompt\": \"春天\"}", 404, "invalid_request_error", "model", "model_not_found"),
                new Bad("no prompt", "{\"model\": \"poem\"}", 400, "invalid_request_error", "prompt", null),
                new Bad("empty prompt", "{\"model\": \"poem\", \"prompt\": \"\"}", 400, "invalid_request_error", "prompt", null),
                new Bad("token id outside the vocabulary", "{\"model\": \"poem\", \"prompt\": [1, 99999999]}", 400, "invalid_request_error", "prompt", null),
                new Bad("prompt over the context", "{\"model\": \"poem\", \"prompt\": \"" + "春天来了，".repeat(1500) + "\"}", 400,
                        "invalid_request_error", "prompt", "context_length_exceeded"),
                new Bad("max_tokens 0", "{\"model\": \"poem\", \"prompt\": \"春天\", \"max_tokens\": 0}", 400, "invalid_request_error", "max_tokens", null),
                new Bad("max_tokens huge", "{\"model\": \"poem\", \"prompt\": \"春天\", \"max_tokens\": 1000000000000}", 400, "invalid_request_error", "max_tokens", null),
                new Bad("max_tokens not a number", "{\"model\": \"poem\", \"prompt\": \"春天\", \"max_tokens\": \"ten\"}", 400, "invalid_request_error", "max_tokens", null),
                new Bad("n too large", "{\"model\": \"poem\", \"prompt\": \"春天\", \"n\": 1000}", 400, "invalid_request_error", "n", null),
                new Bad("negative temperature", "{\"model\": \"poem\", \"prompt\": \"春天\", \"temperature\": -1}", 400, "invalid_request_error", "temperature", null),
                new Bad("five stop strings", "{\"model\": \"poem\", \"prompt\": \"春天\", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "invalid_request_error", "stop", null),
                new Bad("presence_penalty", "{\"model\": \"poem\", \"prompt\": \"春天\", \"presence_penalty\": 1}", 400, "invalid_request_error", "presence_penalty", "unsupported_parameter"),
                new Bad("classifying token ids", "{\"model\": \"sentiment\", \"prompt\": [1, 2, 3]}", 400, "invalid_request_error", "prompt", null));
        try (ServerFixture f = new ServerFixture(dir)) {
            for (Bad b : cases) {
                ServerFixture.Reply r = f.post("/v1/completions", b.body());
                assertError(r, b.status(), b.type(), b.param(), b.code(), b.what());
                assertEquals(200, f.post("/v1/completions", GOOD).status(), "after " + b.what());
            }
            assertError(f.post("/v1/chat/completions", "{\"model\": \"chat\", \"messages\": [{\"role\": \"system\", \"content\": \"x\"}]}"), 400,
                    "invalid_request_error", "messages", null, "chat without a user message");
            assertError(f.post("/v1/chat/completions", "{\"model\": \"chat\", \"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}"), 400,
                    "invalid_request_error", "messages[0].role", null, "unknown role");
            assertError(f.post("/v1/classify", "{\"model\": \"poem\", \"input\": \"好\"}"), 400, "invalid_request_error", "model", "not_a_classifier", "classify with a generation task");
            assertError(f.post("/v1/completions", new byte[]{'{', '"', 'm', '"', ':', '"', (byte) 0xC3, (byte) 0x28, '"', '}'}), 400,
                    "invalid_request_error", null, null, "invalid UTF-8");
            byte[] tenMegabytes = ("{\"model\": \"poem\", \"prompt\": \"" + "a".repeat(10 << 20) + "\"}").getBytes(StandardCharsets.UTF_8);
            assertError(f.post("/v1/completions", tenMegabytes), 413, "invalid_request_error", null, "request_too_large", "10 MB body");
            assertError(f.get("/v1/completions"), 405, "invalid_request_error", null, "method_not_allowed", "GET on a POST endpoint");
            assertError(f.get("/v2/anything"), 404, "invalid_request_error", null, "unknown_url", "unknown path");
            assertEquals(200, f.post("/v1/completions", GOOD).status());
            assertEquals(200, f.get("/health").status());
            assertTrue(f.get("/metrics").body().contains("bloomtune_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"));
        }
    }

    @Test
    void overloadGets429WithRetryAfterAndSlowRequestsTimeOut() throws Exception {
        SchedulerOptions tight = new SchedulerOptions(1, 1, Duration.ofSeconds(2), 4096);
        try (ServerFixture f = new ServerFixture(dir, OpenAiServer.Options.defaults().withScheduler(tight));
             ExecutorService clients = Executors.newFixedThreadPool(12)) {
            List<Future<ServerFixture.Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                replies.add(clients.submit(() -> f.post("/v1/completions",
                        "{\"model\": \"chat\", \"prompt\": \"你好\", \"max_tokens\": 60, \"temperature\": 0}")));
            }
            int busy = 0;
            for (Future<ServerFixture.Reply> r : replies) {
                ServerFixture.Reply reply = r.get();
                if (reply.status() == 429) {
                    busy++;
                    assertEquals("1", reply.headers().firstValue("Retry-After").orElse(null));
                    assertError(reply, 429, "rate_limit_error", null, "rate_limit_exceeded", "queue full");
                } else {
                    assertEquals(200, reply.status(), reply.body());
                }
            }
            assertTrue(busy > 0, "12 clients at once on a batch of 1 and a queue of 1: some must be refused");
            assertEquals(200, f.post("/v1/completions", GOOD).status());
        }
    }

    @Test
    void aRequestPastTheTimeoutGets504AndFreesItsRow() throws Exception {
        // The tiny model makes 1000 tokens in 0.5-0.9 s on this machine; 4000 in a quarter of a second would
        // be eight times its best. (With 2 s, a fast phase once let all 4000 through.)
        SchedulerOptions quarterSecond = new SchedulerOptions(1, 1, Duration.ofMillis(250), 4096);
        try (ServerFixture f = new ServerFixture(dir, OpenAiServer.Options.defaults().withScheduler(quarterSecond))) {
            ServerFixture.Reply slow = f.post("/v1/completions", "{\"model\": \"chat\", \"prompt\": \"你好\", \"max_tokens\": 4000, \"temperature\": 0, \"ignore_eos\": true}");
            assertError(slow, 504, "timeout", null, "timeout", "a request past the timeout");
            long produced = f.metric("bloomtune_decode_tokens_total");
            assertTrue(produced > 0 && produced < 4000, "the row stopped at its deadline, after " + produced + " of 4000 tokens");
            assertTrue(f.get("/metrics").body().contains("bloomtune_active_rows 0"), "the timed-out row was let go");
            assertEquals(200, f.post("/v1/completions", GOOD).status(), "the server carries on");
        }
    }

    @Test
    void aClientThatLeavesMidStreamFreesItsRow() throws Exception {
        // A context of 8192 so that the row asks for far more than can be made before the close is
        // noticed: 1500 tokens once all went through in a slow phase of the machine, and the tiny
        // model now makes 1000 in 0.5-0.9 s.
        SchedulerOptions d = SchedulerOptions.defaults();
        SchedulerOptions longContext = new SchedulerOptions(d.maxBatchRows(), d.maxQueued(), d.timeout(), 8192);
        try (ServerFixture f = new ServerFixture(dir, OpenAiServer.Options.defaults().withScheduler(longContext))) {
            String body = "{\"model\": \"chat\", \"prompt\": \"你好\", \"max_tokens\": 8000, \"temperature\": 0, \"stream\": true, \"ignore_eos\": true}";
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), f.server.port())) {
                // An abortive close (RST), as a client that is killed or gives up. The tiny model continues
                // this prompt with "。" and then </s> over and over, which has no text: the stream carries only
                // the keep-alive comments, one each 500 ms, so the server learns of the close at the next
                // one (the row went ~0.5 s after the close here, 90–300 tokens in all). After an orderly
                // close (FIN) the first write draws the client's RST and only the second fails (~1 s).
                s.setSoLinger(true, 0);
                OutputStream out = s.getOutputStream();
                byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " + bytes.length
                        + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(bytes);
                out.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                String line;
                while ((line = in.readLine()) != null && !line.startsWith("data: ")) { /* headers, chunk sizes */ }
                assertNotNull(line, "the stream started");
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!f.get("/metrics").body().contains("bloomtune_active_rows 0") && System.nanoTime() < deadline) Thread.sleep(20);
            long produced = f.metric("bloomtune_decode_tokens_total");
            assertTrue(f.get("/metrics").body().contains("bloomtune_active_rows 0"), "the row was let go");
            System.out.println("client left: the row stopped after " + produced + " of 8000 tokens");
            assertTrue(produced < 7999, "the row stopped when its client left, after " + produced + " of 8000 tokens");
            assertEquals(200, f.post("/v1/completions", GOOD).status());
        }
    }

    @Test
    void adaptersComeAndGoWhileServingAndInFlightRequestsFinish() throws Exception {
        try (ServerFixture f = new ServerFixture(dir, OpenAiServer.Options.defaults().withAdminToken("s3cret"));
             ExecutorService clients = Executors.newFixedThreadPool(2)) {
            String add = "{\"name\": \"poem2\", \"path\": \"" + f.bankDir.resolve("poem").toAbsolutePath() + "\"}";
            assertError(f.post("/v1/adapters", add), 401, "authentication_error", null, "invalid_api_key", "no admin token");
            ServerFixture.Reply added = admin(f, "POST", "/v1/adapters", add);
            assertEquals(201, added.status(), added.body());
            assertEquals("poem2", added.json().get("id").getAsString());
            assertError(admin(f, "POST", "/v1/adapters", add), 409, "invalid_request_error", "name", "already_exists", "the same name twice");
            assertError(admin(f, "POST", "/v1/adapters", "{\"name\": \"x\", \"path\": \"/no/such/adapter\"}"), 400, "invalid_request_error", "path", null, "no such directory");
            assertError(admin(f, "POST", "/v1/adapters", "{\"name\": \"../x\", \"path\": \"/tmp\"}"), 400, "invalid_request_error", "name", null, "bad name");
            assertTrue(f.get("/v1/models").body().contains("\"poem2\""));
            String twin = "{\"model\": \"%s\", \"prompt\": \"春天来了\", \"max_tokens\": 12, \"temperature\": 0}";
            assertEquals(text(f.post("/v1/completions", twin.formatted("poem"))), text(f.post("/v1/completions", twin.formatted("poem2"))));

            Future<ServerFixture.Reply> inFlight = clients.submit(() -> f.post("/v1/completions",
                    "{\"model\": \"poem2\", \"prompt\": \"春天来了\", \"max_tokens\": 400, \"temperature\": 0, \"ignore_eos\": true}"));
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!f.get("/metrics").body().contains("bloomtune_active_rows 1") && System.nanoTime() < deadline) Thread.sleep(5);
            ServerFixture.Reply deleted = admin(f, "DELETE", "/v1/adapters/poem2", null);
            assertEquals(200, deleted.status(), deleted.body());
            assertError(f.post("/v1/completions", twin.formatted("poem2")), 404, "invalid_request_error", "model", "model_not_found", "deleted task");
            ServerFixture.Reply finished = inFlight.get();
            assertEquals(200, finished.status(), finished.body());
            assertEquals(400, finished.json().getAsJsonObject("usage").get("completion_tokens").getAsInt(), "the in-flight request ran to its end");
            assertEquals(f.tokenizer.decode(f.alone("poem", "春天来了", 400, -1), true), text(finished));
            assertError(admin(f, "DELETE", "/v1/adapters/poem2", null), 404, "invalid_request_error", "name", "model_not_found", "deleted twice");
        }
    }

    private static ServerFixture.Reply admin(ServerFixture f, String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(f.base() + path)).header("Authorization", "Bearer s3cret");
        b = body == null ? b.method(method, HttpRequest.BodyPublishers.noBody()) : b.method(method, HttpRequest.BodyPublishers.ofString(body));
        return f.send(b);
    }

    private static String text(ServerFixture.Reply r) {
        assertEquals(200, r.status(), r.body());
        return r.json().getAsJsonArray("choices").get(0).getAsJsonObject().get("text").getAsString();
    }

    static void assertError(ServerFixture.Reply r, int status, String type, String param, String code, String what) {
        assertEquals(status, r.status(), what + ": " + r.body());
        JsonObject e = r.error();
        assertEquals(type, e.get("type").getAsString(), what);
        assertEquals(param, e.get("param").isJsonNull() ? null : e.get("param").getAsString(), what);
        assertEquals(code, e.get("code").isJsonNull() ? null : e.get("code").getAsString(), what);
        assertTrue(!e.get("message").getAsString().isBlank(), what);
    }
}
