package org.bloomtune.serve.openai;

import org.bloomtune.ChildJvm;
import org.bloomtune.demo.DemoBank;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bloomtune serve} as a process: SIGTERM in the middle of a stream lets the stream run to its
 * end and the process exit 0; a port in use is a one-line error with exit code 2.
 */
class ServeProcessTest {
    private static final Pattern LISTENING = Pattern.compile("on http://127\\.0\\.0\\.1:(\\d+)/v1");

    @TempDir
    Path dir;

    @Test
    void sigtermMidStreamFinishesTheStreamAndExitsZero() throws Exception {
        Path bank = bank();
        Process server = serve(List.of("--bank", bank.toString(), "--port", "0"));
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
            int port = port(out);
            HttpClient http = HttpClient.newHttpClient();
            HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"poem\", \"prompt\": \"春天\", \"max_tokens\": 300, \"temperature\": 0, "
                            + "\"stream\": true, \"ignore_eos\": true, \"stream_options\": {\"include_usage\": true}}")).build();
            HttpResponse<Stream<String>> response = http.send(request, HttpResponse.BodyHandlers.ofLines());
            assertEquals(200, response.statusCode());
            Iterator<String> lines = response.body().iterator();
            List<String> events = new ArrayList<>();
            while (lines.hasNext()) {
                String line = lines.next();
                if (!line.startsWith("data: ")) continue;
                events.add(line);
                if (events.size() == 1) server.toHandle().destroy();       // SIGTERM, mid-stream (Process.destroy would close our pipes too)
            }
            assertEquals("data: [DONE]", events.getLast());
            String usage = events.get(events.size() - 2);
            assertTrue(usage.contains("\"completion_tokens\":300"), "the stream ran to its end: " + usage);
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "the server stopped by itself");
            assertEquals(0, server.exitValue(), drain(out));
            assertFalse(reachable(port), "nothing listens any more");
        } finally {
            server.destroyForcibly();
        }
    }

    @Test
    void aPortInUseIsAOneLineErrorWithExitCode2() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Process server = serve(List.of("--port", Integer.toString(taken.getLocalPort())));
            assertTrue(server.waitFor(60, TimeUnit.SECONDS));
            String log = drain(new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8)));
            assertEquals(2, server.exitValue(), log);
            assertTrue(log.contains("cannot listen on 127.0.0.1:" + taken.getLocalPort()), log);
            assertFalse(log.contains("\tat "), log);
        }
    }

    private Path bank() {
        try (BloomModel model = BloomModel.load(ServerFixture.MODEL)) {
            return DemoBank.write(model, Tokenizer.load(ServerFixture.MODEL.resolve("tokenizer.json")), dir.resolve("bank"));
        }
    }

    private Process serve(List<String> flags) throws IOException {
        List<String> command = ChildJvm.cli();
        command.addAll(List.of("serve", "--model", ServerFixture.MODEL.toString()));
        command.addAll(flags);
        return new ProcessBuilder(command).redirectErrorStream(true).start();
    }

    private static int port(BufferedReader out) throws IOException {
        for (String line; (line = out.readLine()) != null; ) {
            Matcher m = LISTENING.matcher(line);
            if (m.find()) return Integer.parseInt(m.group(1));
        }
        throw new AssertionError("the server never said where it listens");
    }

    private static String drain(BufferedReader out) throws IOException {
        StringBuilder b = new StringBuilder();
        for (String line; (line = out.readLine()) != null; ) b.append(line).append('\n');
        return b.toString();
    }

    private static boolean reachable(int port) {
        try (java.net.Socket s = new java.net.Socket(InetAddress.getLoopbackAddress(), port)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static { assertTrue(Files.isDirectory(ServerFixture.MODEL)); }
}
