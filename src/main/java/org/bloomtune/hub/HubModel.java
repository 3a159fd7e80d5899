package org.bloomtune.hub;

import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.io.ShardedWeights;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A model on the Hugging Face hub, as {@code from_pretrained("org/name")} fetches it, in the cache
 * huggingface_hub uses: the config, the tokenizer files, and the weights transformers would pick
 * (safetensors, else sharded safetensors, else {@code pytorch_model.bin}, else sharded .bin). Offline
 * first: a snapshot that already has them is used without a request. Each download is checked
 * against the hub's size and blob id (sha256 for large files, the git blob hash for the others)
 * before it becomes a blob; only whole blobs are linked into a snapshot.
 */
public final class HubModel {
    /** A repository id as huggingface_hub accepts it: [org/]name of letters, digits, '-', '_', '.'. */
    private static final Pattern REPO_ID = Pattern.compile("(?:[\\w.-]{1,96}/)?[\\w.-]{1,96}");
    private static final List<String> OPTIONAL = List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json");

    private HubModel() {}

    /** True when {@code text} is shaped like a repository id (and so is not meant as a directory). */
    public static boolean isRepoId(String text) {
        return REPO_ID.matcher(text).matches() && text.contains("/") && !text.contains("..") && !text.contains("--")
                && !text.startsWith(".") && !text.endsWith(".");
    }

    /**
     * The snapshot directory of {@code repoId} at {@code revision} (a branch, tag or commit; "main"
     * when null), downloading what the cache lacks unless {@code options.offline()}.
     *
     * @param progress where download progress goes (a bar per large file), or null
     */
    public static Path resolve(String repoId, String revision, HubOptions options, PrintStream progress) {
        if (!isRepoId(repoId)) throw new IllegalArgumentException("'" + repoId + "' is not a hub repository id (org/name)");
        String rev = revision == null ? "main" : revision;
        HubCache cache = new HubCache(options.cache(), repoId);
        Optional<String> known = cache.commit(rev);
        if (known.isPresent() && complete(cache, known.get())) return cache.snapshot(known.get());
        if (options.offline()) {
            throw new HubException(HubException.Reason.OFFLINE, repoId + ": HF_HUB_OFFLINE is set and the cache " + cache.directory()
                    + (known.isEmpty() ? " has no snapshot for revision " + rev : " lacks " + String.join(", ", missing(cache, known.get())))
                    + "; run once with network access (or unset HF_HUB_OFFLINE)");
        }
        return new Download(repoId, rev, cache, new HubClient(options), progress).run();
    }

    /** One online resolution: pins the commit with the config, then fetches the rest at that commit. */
    private record Download(String repo, String revision, HubCache cache, HubClient client, PrintStream progress) {
        Path run() {
            HubClient.Metadata config = client.head(repo, revision, HfCheckpoint.CONFIG)
                    .orElseThrow(() -> new HubException(HubException.Reason.ENTRY_NOT_FOUND, repo + " has no " + HfCheckpoint.CONFIG
                            + " at revision " + revision + ": not a transformers model repository"));
            String commit = config.commit();
            fetch(commit, HfCheckpoint.CONFIG, config);
            for (String f : OPTIONAL) optional(commit, f);
            weights(commit);
            cache.writeRef(revision, commit);
            return cache.snapshot(commit);
        }

        private void weights(String commit) {
            if (optional(commit, HfCheckpoint.SAFETENSORS)) return;
            if (optional(commit, HfCheckpoint.SAFETENSORS_INDEX)) {
                shards(commit, HfCheckpoint.SAFETENSORS_INDEX);
                return;
            }
            if (optional(commit, HfCheckpoint.TORCH_BIN)) return;
            if (optional(commit, HfCheckpoint.TORCH_BIN_INDEX)) {
                shards(commit, HfCheckpoint.TORCH_BIN_INDEX);
                return;
            }
            throw new HubException(HubException.Reason.ENTRY_NOT_FOUND, repo + " has no weights at revision " + revision + " (none of "
                    + HfCheckpoint.SAFETENSORS + ", " + HfCheckpoint.SAFETENSORS_INDEX + ", " + HfCheckpoint.TORCH_BIN + ", "
                    + HfCheckpoint.TORCH_BIN_INDEX + ")");
        }

        private void shards(String commit, String index) {
            for (String shard : ShardedWeights.shardNames(cache.snapshot(commit).resolve(index))) {
                if (!cache.has(commit, shard)) {
                    fetch(commit, shard, client.head(repo, commit, shard).orElseThrow(() -> new HubException(
                            HubException.Reason.ENTRY_NOT_FOUND, repo + ": " + index + " names " + shard + ", which the repository lacks")));
                }
            }
        }

        /** Fetches {@code file} if the repository has it; false (and a .no_exist marker) if not. */
        private boolean optional(String commit, String file) {
            if (cache.has(commit, file)) return true;
            if (cache.knownMissing(commit, file)) return false;
            Optional<HubClient.Metadata> m = client.head(repo, commit, file);
            if (m.isEmpty()) {
                cache.markMissing(commit, file);
                return false;
            }
            fetch(commit, file, m.get());
            return true;
        }

        private void fetch(String commit, String file, HubClient.Metadata m) {
            if (cache.has(commit, file)) return;
            if (!Files.isRegularFile(cache.blob(m.etag()))) {
                Path partial = cache.incomplete(m.etag());
                client.download(repo, file, m, partial, progress);
                verify(file, m, partial);
                try {
                    org.bloomtune.io.AtomicFiles.move(partial, cache.blob(m.etag()));
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot write " + cache.blob(m.etag()) + ": " + e.getMessage(), e);
                }
            }
            cache.link(commit, file, m.etag());
        }

        /** Size as announced, and content hashing to the blob id; a bad download is deleted, never cached. */
        private void verify(String file, HubClient.Metadata m, Path partial) {
            try {
                long size = Files.size(partial);
                String problem = null;
                if (m.size() >= 0 && size != m.size()) problem = "size " + size + " bytes, the hub announced " + m.size();
                else if (m.etag().matches("[0-9a-f]{64}") && !m.etag().equals(digest(partial, "SHA-256", null))) problem = "sha256 differs from the hub's";
                else if (m.etag().matches("[0-9a-f]{40}") && !m.etag().equals(digest(partial, "SHA-1", "blob " + size + "\0"))) problem = "git blob hash differs from the hub's";
                if (problem != null) {
                    Files.deleteIfExists(partial);
                    throw new HubException(HubException.Reason.CORRUPT, repo + ": the download of " + file + " is damaged (" + problem
                            + "); it was discarded, try again");
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot check " + partial + ": " + e.getMessage(), e);
            }
        }
    }

    private static String digest(Path file, String algorithm, String prefix) throws IOException {
        try {
            MessageDigest md = MessageDigest.getInstance(algorithm);
            if (prefix != null) md.update(prefix.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buffer = new byte[1 << 20];
                for (int n; (n = in.read(buffer)) > 0; ) md.update(buffer, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A snapshot has the config and a whole set of weights (index and every shard). */
    static boolean complete(HubCache cache, String commit) { return missing(cache, commit).isEmpty(); }

    private static List<String> missing(HubCache cache, String commit) {
        List<String> out = new ArrayList<>();
        if (!cache.has(commit, HfCheckpoint.CONFIG)) out.add(HfCheckpoint.CONFIG);
        if (cache.has(commit, HfCheckpoint.SAFETENSORS) || cache.has(commit, HfCheckpoint.TORCH_BIN)) return out;
        for (String index : List.of(HfCheckpoint.SAFETENSORS_INDEX, HfCheckpoint.TORCH_BIN_INDEX)) {
            if (!cache.has(commit, index)) continue;
            try {
                for (String shard : ShardedWeights.shardNames(cache.snapshot(commit).resolve(index))) {
                    if (!cache.has(commit, shard)) out.add(shard);
                }
            } catch (IllegalArgumentException | UncheckedIOException e) {
                out.add(index);
            }
            return out;
        }
        out.add("the weights (" + HfCheckpoint.SAFETENSORS + " or " + HfCheckpoint.TORCH_BIN + ")");
        return out;
    }
}
