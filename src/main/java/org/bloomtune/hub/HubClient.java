package org.bloomtune.hub;

import org.bloomtune.io.ProgressBar;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Optional;

/**
 * The hub's HTTP protocol for downloading a file, as huggingface_hub speaks it: a HEAD on
 * {@code /{repo}/resolve/{revision}/{file}} that does not follow redirects — for a large (LFS) file
 * the commit ({@code X-Repo-Commit}), blob id ({@code X-Linked-Etag}) and size
 * ({@code X-Linked-Size}) are on the 302, not on the CDN's answer — then a GET that follows them,
 * resuming a partial download with {@code Range}. The token goes to the hub only, never to a CDN.
 */
final class HubClient {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /** What a HEAD told about a file: the commit it belongs to, its blob id, size (-1 unknown) and where to GET it. */
    record Metadata(String commit, String etag, long size, URI location) {}

    private final HubOptions options;
    private final HttpClient head = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).connectTimeout(TIMEOUT).build();
    private final HttpClient get = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL).connectTimeout(TIMEOUT).build();

    HubClient(HubOptions options) {
        this.options = options;
    }

    /** The file's metadata, or empty when the hub says the file does not exist at that revision. */
    Optional<Metadata> head(String repo, String revision, String file) {
        URI url = resolveUrl(repo, revision, file);
        for (int hops = 0; hops < 5; hops++) {
            HttpResponse<Void> r = send(head, request(url).method("HEAD", HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.discarding(), repo);
            int status = r.statusCode();
            Optional<String> location = r.headers().firstValue("Location");
            // A relative redirect (a renamed repository) stays on the hub: follow it; an absolute one is the CDN.
            if (status >= 300 && status < 400 && location.isPresent() && location.get().startsWith("/")) {
                url = url.resolve(location.get());
                continue;
            }
            if (status >= 400) {
                if (status == 404 && "EntryNotFound".equals(r.headers().firstValue("X-Error-Code").orElse(""))) return Optional.empty();
                throw error(repo, revision, file, r);
            }
            String commit = r.headers().firstValue("X-Repo-Commit").orElse(null);
            String etag = normalizeEtag(r.headers().firstValue("X-Linked-Etag").or(() -> r.headers().firstValue("ETag")).orElse(null));
            if (commit == null || !HubCache.COMMIT.matcher(commit).matches()) {
                throw new HubException(HubException.Reason.NETWORK, repo + ": " + url + " answered without an X-Repo-Commit header: "
                        + options.endpoint() + " does not look like a Hugging Face hub (check HF_ENDPOINT and any proxy)");
            }
            if (etag == null || !etag.matches("[0-9A-Za-z._-]{1,128}")) {
                throw new HubException(HubException.Reason.NETWORK, repo + ": " + file + " has no usable ETag on " + options.endpoint());
            }
            long size = r.headers().firstValue("X-Linked-Size")
                    .or(() -> status < 300 ? r.headers().firstValue("Content-Length") : Optional.empty()).map(Long::parseLong).orElse(-1L);
            URI target = location.map(url::resolve).orElse(url);
            return Optional.of(new Metadata(commit, etag, size, target));
        }
        throw new HubException(HubException.Reason.NETWORK, repo + ": too many redirects for " + file);
    }

    /**
     * Downloads {@code m.location()} into {@code partial}, continuing where an earlier attempt
     * stopped; throws on a network failure, leaving what arrived for the next attempt.
     */
    void download(String repo, String file, Metadata m, Path partial, PrintStream progress) {
        long have = 0;
        try {
            Files.createDirectories(partial.getParent());
            have = Files.exists(partial) ? Files.size(partial) : 0;
            if (m.size() >= 0 && have > m.size()) {
                Files.delete(partial);
                have = 0;
            }
            if (m.size() >= 0 && have == m.size()) return;
            HttpRequest.Builder b = sameHost(m.location()) ? request(m.location()) : HttpRequest.newBuilder(m.location()).timeout(TIMEOUT);
            if (have > 0) b.header("Range", "bytes=" + have + "-");
            HttpResponse<InputStream> r = send(get, b.GET().build(), HttpResponse.BodyHandlers.ofInputStream(), repo);
            if (r.statusCode() >= 400) {
                r.body().close();
                throw error(repo, m.commit(), file, r);
            }
            boolean append = r.statusCode() == 206;
            if (!append) have = 0;                       // the server ignored the range: start over
            copy(r.body(), partial, append, have, m.size(), file, progress);
        } catch (IOException e) {
            throw new HubException(HubException.Reason.NETWORK, repo + ": the download of " + file + " broke off (" + e.getMessage()
                    + "); what arrived is kept in " + partial + " and the next run resumes from there", e);
        }
    }

    private static void copy(InputStream in, Path partial, boolean append, long have, long size, String file, PrintStream progress) throws IOException {
        ProgressBar bar = progress == null || size < 1 << 20 ? null : ProgressBar.forStream(progress, (int) Math.max(1, (size + (1 << 20) - 1) >> 20));
        try (in; OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] buffer = new byte[1 << 16];
            long done = have;
            long shown = -1;
            for (int n; (n = in.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
                done += n;
                if (bar != null && (done >> 20) != shown) {
                    shown = done >> 20;
                    bar.update((int) shown, "MiB of " + file);
                }
            }
            if (bar != null) bar.update((int) Math.max(1, (size + (1 << 20) - 1) >> 20), "MiB of " + file);
        }
    }

    private HttpRequest.Builder request(URI url) {
        HttpRequest.Builder b = HttpRequest.newBuilder(url).timeout(TIMEOUT).header("Accept-Encoding", "identity")
                .header("User-Agent", "bloomtune/0.1");
        if (options.token() != null) b.header("Authorization", "Bearer " + options.token());
        return b;
    }

    private boolean sameHost(URI url) {
        return url.getHost() != null && url.getHost().equalsIgnoreCase(options.endpoint().getHost())
                && url.getPort() == options.endpoint().getPort();
    }

    private <T> HttpResponse<T> send(HttpClient client, HttpRequest request, HttpResponse.BodyHandler<T> handler, String repo) {
        try {
            return client.send(request, handler);
        } catch (ConnectException | HttpTimeoutException e) {
            throw new HubException(HubException.Reason.NETWORK, repo + ": cannot reach " + options.endpoint() + " (" + e.getClass().getSimpleName()
                    + (e.getMessage() == null ? "" : ": " + e.getMessage()) + "); set HF_HUB_OFFLINE=1 to use the cache only", e);
        } catch (IOException e) {
            throw new HubException(HubException.Reason.NETWORK, repo + ": talking to " + options.endpoint() + " failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException(HubException.Reason.NETWORK, repo + ": interrupted", e);
        }
    }

    /** The hub's refusals, told apart as huggingface_hub tells them apart. */
    private HubException error(String repo, String revision, String file, HttpResponse<?> r) {
        String code = r.headers().firstValue("X-Error-Code").orElse("");
        int status = r.statusCode();
        if (code.equals("GatedRepo") || status == 403) {
            return new HubException(HubException.Reason.GATED, repo + " is gated" + (options.token() == null ? "" : " and this token has no access")
                    + ": request access on " + options.endpoint() + "/" + repo + ", then set HF_TOKEN to a token of that account");
        }
        if (code.equals("RevisionNotFound")) {
            return new HubException(HubException.Reason.REVISION_NOT_FOUND, repo + ": revision '" + revision + "' does not exist");
        }
        if (code.equals("EntryNotFound")) {
            return new HubException(HubException.Reason.ENTRY_NOT_FOUND, repo + " has no " + file + " at revision " + revision);
        }
        if (status == 401 || code.equals("RepoNotFound")) {
            if (options.token() == null) {
                return new HubException(HubException.Reason.UNAUTHORIZED, repo + ": repository not found on " + options.endpoint()
                        + ", or private: check the name; for a private or gated repository set HF_TOKEN");
            }
            return new HubException(HubException.Reason.REPO_NOT_FOUND, repo + ": repository not found on " + options.endpoint()
                    + (status == 401 ? " (or HF_TOKEN is not valid)" : ""));
        }
        return new HubException(HubException.Reason.NETWORK, repo + ": " + options.endpoint() + " answered HTTP " + status + " for " + file);
    }

    private URI resolveUrl(String repo, String revision, String file) {
        StringBuilder path = new StringBuilder();
        for (String part : file.split("/")) path.append('/').append(encode(part));
        return URI.create(options.endpoint() + "/" + repo + "/resolve/" + encode(revision) + path);
    }

    private static String encode(String s) { return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20"); }

    /** As huggingface_hub: a weak validator's {@code W/} prefix and the quotes dropped. */
    static String normalizeEtag(String etag) {
        if (etag == null) return null;
        String e = etag.strip();
        if (e.startsWith("W/")) e = e.substring(2);
        return e.replace("\"", "");
    }
}
