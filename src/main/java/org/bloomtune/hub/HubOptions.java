package org.bloomtune.hub;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * Where the Hugging Face hub and its local cache are, as huggingface_hub reads them from the
 * environment, so BloomTune and Python share one cache.
 *
 * @param endpoint the hub ({@code HF_ENDPOINT}, default https://huggingface.co)
 * @param cache    the hub cache ({@code HF_HUB_CACHE}, else {@code HF_HOME/hub}, else
 *                 {@code $XDG_CACHE_HOME/huggingface/hub} or {@code ~/.cache/huggingface/hub})
 * @param token    a bearer token ({@code HF_TOKEN}, else the file {@code HF_HOME/token}), or null
 * @param offline  never touch the network ({@code HF_HUB_OFFLINE=1})
 */
public record HubOptions(URI endpoint, Path cache, String token, boolean offline) {
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    public HubOptions {
        if (endpoint == null || endpoint.getScheme() == null || !endpoint.getScheme().startsWith("http")) {
            throw new IllegalArgumentException("HF_ENDPOINT must be an http(s) URL, got " + endpoint);
        }
        if (cache == null) throw new IllegalArgumentException("the hub cache directory must be given");
        if (token != null && token.isBlank()) token = null;
    }

    /** The options huggingface_hub would use in this process's environment. */
    public static HubOptions fromEnvironment() { return from(System.getenv()); }

    static HubOptions from(Map<String, String> env) {
        String home = env.getOrDefault("HF_HOME",
                Path.of(env.getOrDefault("XDG_CACHE_HOME", Path.of(System.getProperty("user.home"), ".cache").toString()), "huggingface").toString());
        Path cache = Path.of(env.getOrDefault("HF_HUB_CACHE", Path.of(home, "hub").toString()));
        String endpoint = env.getOrDefault("HF_ENDPOINT", DEFAULT_ENDPOINT);
        while (endpoint.endsWith("/")) endpoint = endpoint.substring(0, endpoint.length() - 1);
        String token = env.get("HF_TOKEN");
        if (token == null) token = tokenFile(Path.of(home, "token"));
        boolean offline = truthy(env.get("HF_HUB_OFFLINE")) || truthy(env.get("TRANSFORMERS_OFFLINE"));
        URI uri;
        try {
            uri = URI.create(endpoint);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("HF_ENDPOINT is not a URL: " + endpoint, e);
        }
        return new HubOptions(uri, cache, token, offline);
    }

    public HubOptions withOffline(boolean v) { return new HubOptions(endpoint, cache, token, v); }

    public HubOptions withToken(String t) { return new HubOptions(endpoint, cache, t, offline); }

    private static String tokenFile(Path file) {
        try {
            return Files.isRegularFile(file) ? Files.readString(file).strip() : null;
        } catch (IOException e) {
            return null;                                   // an unreadable token file is as good as none
        }
    }

    private static boolean truthy(String v) {
        return v != null && Map.of("1", 1, "true", 1, "yes", 1, "on", 1).containsKey(v.strip().toLowerCase(Locale.ROOT));
    }
}
