package org.bloomtune.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.stream.Stream;

/**
 * A Hugging Face hub on 127.0.0.1 for tests, answering as huggingface.co does (as huggingface_hub
 * expects it): {@code /{repo}/resolve/{revision}/{file}} gives small files directly (ETag = the git
 * blob hash) and large ones (.safetensors, .bin) as a 302 to a CDN URL on another host name
 * ({@code localhost}, served by this same server on 127.0.0.1), with X-Repo-Commit,
 * X-Linked-Etag (the sha256) and X-Linked-Size on the redirect; the CDN honours Range. Anonymous
 * requests for private or missing repositories get 401, a token for a missing one 404, a token
 * without access to a gated one 403, each with its X-Error-Code. Faults can be injected: a download
 * cut after N bytes, corrupted bytes. Every request is logged.
 */
final class FakeHub implements AutoCloseable {
    enum Access { PUBLIC, PRIVATE, GATED }

    record Repo(String commit, Map<String, byte[]> files, Access access, Set<String> tokens) {}

    private final HttpServer server;
    private final Map<String, Repo> repos = new ConcurrentHashMap<>();
    private final Map<String, byte[]> cdn = new ConcurrentHashMap<>();
    private final Map<String, Long> cutAfter = new ConcurrentHashMap<>();
    private final Set<String> corrupt = ConcurrentHashMap.newKeySet();
    final List<String> log = Collections.synchronizedList(new ArrayList<>());

    FakeHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", this::handle);
        server.start();
    }

    URI endpoint() { return URI.create("http://127.0.0.1:" + server.getAddress().getPort()); }

    /** Serves every file of {@code dir} as repository {@code id} at a commit derived from its contents. */
    Repo add(String id, Path dir, Access access, String... tokens) throws IOException {
        Map<String, byte[]> files = new LinkedHashMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.filter(Files::isRegularFile).sorted().toList()) files.put(p.getFileName().toString(), Files.readAllBytes(p));
        }
        MessageDigest sha1 = sha("SHA-1");
        files.forEach((k, v) -> { sha1.update(k.getBytes(StandardCharsets.UTF_8)); sha1.update(v); });
        Repo repo = new Repo(HexFormat.of().formatHex(sha1.digest()), files, access, Set.of(tokens));
        repos.put(id, repo);
        files.forEach((k, v) -> { if (lfs(k)) cdn.put(hex(sha("SHA-256"), v), v); });
        return repo;
    }

    /** The next CDN download of {@code file}'s content stops after {@code bytes} bytes. */
    void cutAfter(byte[] content, long bytes) { cutAfter.put(hex(sha("SHA-256"), content), bytes); }

    /** Downloads of {@code content} from the CDN deliver one byte changed. */
    void corrupt(byte[] content) { corrupt.add(hex(sha("SHA-256"), content)); }

    private void handle(HttpExchange x) throws IOException {
        try (x) {
            String path = x.getRequestURI().getRawPath();
            log.add(x.getRequestMethod() + " " + path + (x.getRequestHeaders().containsKey("Range") ? " " + x.getRequestHeaders().getFirst("Range") : ""));
            if (path.startsWith("/cdn/")) cdn(x, path.substring(5));
            else resolve(x, path);
        }
    }

    private void resolve(HttpExchange x, String path) throws IOException {
        String[] p = path.substring(1).split("/", 5);
        if (p.length < 5 || !p[2].equals("resolve")) {
            send(x, 404, null);
            return;
        }
        String id = p[0] + "/" + p[1];
        String revision = URLDecoder.decode(p[3], StandardCharsets.UTF_8);
        String file = URLDecoder.decode(p[4], StandardCharsets.UTF_8);
        String auth = x.getRequestHeaders().getFirst("Authorization");
        String token = auth != null && auth.startsWith("Bearer ") ? auth.substring(7) : null;
        Repo repo = repos.get(id);
        boolean authorized = repo != null && (repo.access() == Access.PUBLIC || (token != null && repo.tokens().contains(token)));
        if (repo == null || (repo.access() == Access.PRIVATE && !authorized)) {
            x.getResponseHeaders().set("X-Error-Code", "RepoNotFound");
            send(x, token == null ? 401 : 404, null);
            return;
        }
        if (repo.access() == Access.GATED && !authorized) {
            x.getResponseHeaders().set("X-Error-Code", "GatedRepo");
            send(x, token == null ? 401 : 403, null);
            return;
        }
        if (!revision.equals("main") && !revision.equals(repo.commit())) {
            x.getResponseHeaders().set("X-Error-Code", "RevisionNotFound");
            send(x, 404, null);
            return;
        }
        x.getResponseHeaders().set("X-Repo-Commit", repo.commit());
        byte[] content = repo.files().get(file);
        if (content == null) {
            x.getResponseHeaders().set("X-Error-Code", "EntryNotFound");
            send(x, 404, null);
            return;
        }
        if (lfs(file)) {
            String sha256 = hex(sha("SHA-256"), content);
            x.getResponseHeaders().set("X-Linked-Etag", "\"" + sha256 + "\"");
            x.getResponseHeaders().set("X-Linked-Size", Long.toString(content.length));
            x.getResponseHeaders().set("ETag", "W/\"" + hex(sha("SHA-1"), file.getBytes(StandardCharsets.UTF_8)) + "\"");
            // The CDN is another host, as on the real hub (clients send no token there): "localhost", same server.
            x.getResponseHeaders().set("Location", "http://localhost:" + server.getAddress().getPort() + "/cdn/" + sha256);
            send(x, 302, null);
            return;
        }
        MessageDigest blob = sha("SHA-1");
        blob.update(("blob " + content.length + "\0").getBytes(StandardCharsets.US_ASCII));
        x.getResponseHeaders().set("ETag", "\"" + hex(blob, content) + "\"");
        send(x, 200, content);
    }

    private void cdn(HttpExchange x, String sha256) throws IOException {
        byte[] content = cdn.get(sha256);
        if (content == null) {
            send(x, 404, null);
            return;
        }
        if (corrupt.contains(sha256)) {
            content = content.clone();
            content[content.length / 2] ^= 1;
        }
        long from = 0;
        String range = x.getRequestHeaders().getFirst("Range");
        if (range != null && range.matches("bytes=\\d+-")) from = Long.parseLong(range.substring(6, range.length() - 1));
        if (from > 0) x.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + (content.length - 1) + "/" + content.length);
        byte[] body = java.util.Arrays.copyOfRange(content, (int) Math.min(from, content.length), content.length);
        Long cut = cutAfter.remove(sha256);
        if (cut != null && !x.getRequestMethod().equals("HEAD")) {
            x.sendResponseHeaders(from > 0 ? 206 : 200, body.length);
            try (OutputStream out = x.getResponseBody()) {
                out.write(body, 0, (int) Math.min(cut, body.length));
                out.flush();
            }
            // Closing short of the announced length: the client sees the connection break mid-file.
            return;
        }
        send(x, from > 0 ? 206 : 200, body);
    }

    private static void send(HttpExchange x, int status, byte[] body) throws IOException {
        boolean head = x.getRequestMethod().equals("HEAD");
        if (body != null) x.getResponseHeaders().set("Content-Length", Long.toString(body.length));
        x.sendResponseHeaders(status, head || body == null ? -1 : body.length);
        if (!head && body != null) {
            try (OutputStream out = x.getResponseBody()) {
                out.write(body);
            }
        }
    }

    static boolean lfs(String file) { return file.endsWith(".safetensors") || file.endsWith(".bin"); }

    private static MessageDigest sha(String algorithm) {
        try {
            return MessageDigest.getInstance(algorithm);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(MessageDigest md, byte[] content) { return HexFormat.of().formatHex(md.digest(content)); }

    @Override
    public void close() { server.stop(0); }

    /** Serves a directory as a repository until killed: {@code FakeHub ORG/NAME DIR PORT-FILE}, for checks with the Python client. */
    public static void main(String[] args) throws Exception {
        FakeHub hub = new FakeHub();
        hub.add(args[0], Path.of(args[1]), Access.PUBLIC);
        Files.writeString(Path.of(args[2]), hub.endpoint().toString());
        Thread.sleep(Long.parseLong(args.length > 3 ? args[3] : "600000"));
        hub.close();
        System.exit(0);
    }
}
