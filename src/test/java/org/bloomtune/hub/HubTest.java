package org.bloomtune.hub;

import org.bloomtune.ChildJvm;
import org.bloomtune.Reference;
import org.bloomtune.io.ShardedWeights;
import org.bloomtune.io.TorchBinWeights;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.tensor.GradMode;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hub ids through the Hugging Face cache, against a hub on 127.0.0.1 that answers as the real one does. */
class HubTest {
    static final Path MODEL = Reference.reference("hf/a/model");
    static final String REPO = "Langboat/tiny-bloom";

    @TempDir
    Path dir;
    FakeHub hub;
    HubOptions options;

    @BeforeEach
    void start() throws IOException {
        hub = new FakeHub();
        options = new HubOptions(hub.endpoint(), dir.resolve("hub"), null, false);
    }

    @AfterEach
    void stop() { hub.close(); }

    @Test
    void downloadsIntoHuggingfaceHubsLayoutAndThenStaysOffline() throws Exception {
        FakeHub.Repo repo = hub.add(REPO, MODEL, FakeHub.Access.PUBLIC);
        Path snapshot = HubModel.resolve(REPO, null, options, null);
        Path repoDir = dir.resolve("hub/models--Langboat--tiny-bloom");
        assertEquals(repoDir.resolve("snapshots").resolve(repo.commit()), snapshot);
        assertEquals(repo.commit(), Files.readString(repoDir.resolve("refs/main")), "refs/main holds the commit, no newline");
        Path link = snapshot.resolve("model.safetensors");
        assertTrue(Files.isSymbolicLink(link));
        String sha256 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(repo.files().get("model.safetensors")));
        assertEquals(Path.of("../../blobs/" + sha256), Files.readSymbolicLink(link), "a relative link into blobs/, named by the sha256");
        assertTrue(Files.readSymbolicLink(snapshot.resolve("config.json")).toString().matches("\\.\\./\\.\\./blobs/[0-9a-f]{40}"));
        assertArrayEquals(repo.files().get("model.safetensors"), Files.readAllBytes(link));
        assertTrue(Files.exists(repoDir.resolve(".no_exist").resolve(repo.commit()).resolve("tokenizer.json")), "absent optional files are recorded");
        Reference.assertSameLogits(snapshot, MODEL);
        int requests = hub.log.size();
        assertEquals(snapshot, HubModel.resolve(REPO, "main", options, null));
        assertEquals(requests, hub.log.size(), "a complete snapshot is used without a request");
        hub.close();
        assertEquals(snapshot, HubModel.resolve(REPO, null, options.withOffline(true), null));
        assertEquals(snapshot, HubModel.resolve(REPO, repo.commit(), options, null), "a commit names its snapshot directly");
    }

    @Test
    void anInterruptedDownloadResumesWhereItStopped() throws Exception {
        FakeHub.Repo repo = hub.add(REPO, MODEL, FakeHub.Access.PUBLIC);
        byte[] weights = repo.files().get("model.safetensors");
        hub.cutAfter(weights, weights.length / 3);
        HubException e = assertThrows(HubException.class, () -> HubModel.resolve(REPO, null, options, null));
        assertEquals(HubException.Reason.NETWORK, e.reason());
        assertTrue(e.getMessage().contains("the download of model.safetensors broke off") && e.getMessage().contains(".incomplete"), e.getMessage());
        Path blobs = dir.resolve("hub/models--Langboat--tiny-bloom/blobs");
        Path partial;
        try (Stream<Path> s = Files.list(blobs)) {
            partial = s.filter(p -> p.toString().endsWith(".incomplete")).findFirst().orElseThrow();
        }
        long kept = Files.size(partial);
        assertTrue(kept > 0 && kept <= weights.length / 3, "kept " + kept + " of the " + weights.length / 3 + " bytes sent");
        assertFalse(Files.exists(dir.resolve("hub/models--Langboat--tiny-bloom/snapshots").resolve(repo.commit()).resolve("model.safetensors")),
                "nothing half-written in snapshots/");
        Path snapshot = HubModel.resolve(REPO, null, options, null);
        assertTrue(hub.log.stream().anyMatch(l -> l.startsWith("GET /cdn/") && l.endsWith("bytes=" + kept + "-")), hub.log.toString());
        assertArrayEquals(weights, Files.readAllBytes(snapshot.resolve("model.safetensors")));
        assertFalse(Files.exists(partial));
    }

    @Test
    void aDamagedDownloadIsDiscardedNotCached() throws Exception {
        FakeHub.Repo repo = hub.add(REPO, MODEL, FakeHub.Access.PUBLIC);
        hub.corrupt(repo.files().get("model.safetensors"));
        HubException e = assertThrows(HubException.class, () -> HubModel.resolve(REPO, null, options, null));
        assertEquals(HubException.Reason.CORRUPT, e.reason());
        assertTrue(e.getMessage().contains("model.safetensors is damaged (sha256 differs from the hub's)"), e.getMessage());
        try (Stream<Path> s = Files.list(dir.resolve("hub/models--Langboat--tiny-bloom/blobs"))) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().length() == 64 || p.toString().endsWith(".incomplete")));
        }
        assertFalse(Files.exists(dir.resolve("hub/models--Langboat--tiny-bloom/snapshots").resolve(repo.commit()).resolve("model.safetensors")));
    }

    @Test
    void privateGatedMissingAndWrongRevisionAreToldApart() throws IOException {
        hub.add("secret/model", MODEL, FakeHub.Access.PRIVATE, "good-token");
        hub.add("gated/model", MODEL, FakeHub.Access.GATED, "granted-token");
        hub.add(REPO, MODEL, FakeHub.Access.PUBLIC);
        assertReason(HubException.Reason.UNAUTHORIZED, "secret/model", null, null, "repository not found on " + hub.endpoint()
                + ", or private: check the name; for a private or gated repository set HF_TOKEN");
        assertReason(HubException.Reason.UNAUTHORIZED, "nobody/nothing", null, null, "set HF_TOKEN");
        assertReason(HubException.Reason.REPO_NOT_FOUND, "nobody/nothing", null, "some-token", "nobody/nothing: repository not found on");
        assertReason(HubException.Reason.GATED, "gated/model", null, "some-token", "gated/model is gated and this token has no access: request access on");
        assertReason(HubException.Reason.REVISION_NOT_FOUND, REPO, "v9", null, "revision 'v9' does not exist");
        assertEquals(dir.resolve("hub/models--secret--model/snapshots").getParent(),
                HubModel.resolve("secret/model", null, options.withToken("good-token"), null).getParent().getParent());
        try (Stream<Path> s = Files.walk(dir.resolve("hub"))) {
            assertTrue(s.noneMatch(p -> p.toString().contains("nobody") || p.toString().contains("gated")), "refusals leave nothing in the cache");
        }
        assertReason(HubException.Reason.OFFLINE, "other/model", null, null, "HF_HUB_OFFLINE is set and the cache");
    }

    private void assertReason(HubException.Reason reason, String repo, String revision, String token, String message) {
        HubOptions o = repo.equals("other/model") ? options.withOffline(true) : options.withToken(token);
        HubException e = assertThrows(HubException.class, () -> HubModel.resolve(repo, revision, o, null));
        assertEquals(reason, e.reason(), e.getMessage());
        assertTrue(e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void shardedSafetensorsAndBinOnlyRepositories() throws IOException {
        Path sharded = dir.resolve("sharded");
        org.bloomtune.io.CheckpointConverter.convert(MODEL, sharded, null, 300_000);
        assertTrue(ShardedWeights.shardNames(sharded.resolve("model.safetensors.index.json")).size() > 1);
        hub.add("org/sharded", sharded, FakeHub.Access.PUBLIC);
        Reference.assertSameLogits(HubModel.resolve("org/sharded", null, options, null), MODEL);
        hub.add("org/bin-only", Reference.reference("hf/a/model-bin"), FakeHub.Access.PUBLIC);
        Path bin = HubModel.resolve("org/bin-only", null, options, null);
        assertTrue(Files.exists(bin.resolve("pytorch_model.bin")));
        try (TorchBinWeights w = TorchBinWeights.read(bin.resolve("pytorch_model.bin"))) {
            assertEquals(30, w.names().size());
        }
        Reference.assertSameLogits(bin, MODEL);
    }

    @Test
    void aCacheThatHuggingfaceHubWroteIsReadOffline() throws IOException {
        // The layout huggingface_hub's hf_hub_download leaves (checked against huggingface_hub 1.33 in
        // this project's session): refs/main = commit without newline, snapshot entries = relative links.
        String commit = "0123456789abcdef0123456789abcdef01234567";
        Path repo = dir.resolve("hf-home/hub/models--bigscience--tiny");
        for (String file : List.of("config.json", "model.safetensors")) {
            byte[] content = Files.readAllBytes(MODEL.resolve(file));
            String etag = file.endsWith(".safetensors") ? "a".repeat(64) : "b".repeat(40);
            Files.createDirectories(repo.resolve("blobs"));
            Files.write(repo.resolve("blobs").resolve(etag), content);
            Path pointer = repo.resolve("snapshots").resolve(commit).resolve(file);
            Files.createDirectories(pointer.getParent());
            Files.createSymbolicLink(pointer, Path.of("../../blobs/" + etag));
        }
        Files.createDirectories(repo.resolve("refs"));
        Files.writeString(repo.resolve("refs/main"), commit);
        Files.createDirectories(repo.resolve(".no_exist").resolve(commit));
        Files.createFile(repo.resolve(".no_exist").resolve(commit).resolve("tokenizer.json"));
        HubOptions fromEnv = HubOptions.from(Map.of("HF_HOME", dir.resolve("hf-home").toString(), "HF_HUB_OFFLINE", "1"));
        assertEquals(dir.resolve("hf-home/hub"), fromEnv.cache());
        assertTrue(fromEnv.offline());
        Reference.assertSameLogits(HubModel.resolve("bigscience/tiny", null, fromEnv, null), MODEL);
    }

    @Test
    void environmentIsReadAsHuggingfaceHubReadsIt() throws IOException {
        HubOptions byCache = HubOptions.from(Map.of("HF_HUB_CACHE", "/c", "HF_HOME", "/h", "HF_ENDPOINT", "http://127.0.0.1:9/", "HF_TOKEN", "t"));
        assertEquals(Path.of("/c"), byCache.cache());
        assertEquals(URI.create("http://127.0.0.1:9"), byCache.endpoint());
        assertEquals("t", byCache.token());
        Path home = Files.createDirectories(dir.resolve("home"));
        Files.writeString(home.resolve("token"), "from-file\n");
        HubOptions byHome = HubOptions.from(Map.of("HF_HOME", home.toString(), "TRANSFORMERS_OFFLINE", "1"));
        assertEquals(home.resolve("hub"), byHome.cache());
        assertEquals("from-file", byHome.token());
        assertTrue(byHome.offline());
        assertEquals(URI.create(HubOptions.DEFAULT_ENDPOINT), byHome.endpoint());
        assertEquals(Path.of("/x/huggingface/hub"), HubOptions.from(Map.of("XDG_CACHE_HOME", "/x")).cache());
        assertEquals("abc", HubClient.normalizeEtag("W/\"abc\""));
        assertTrue(HubModel.isRepoId("Langboat/bloom-1b4-zh") && !HubModel.isRepoId("models/bloom-tiny/..") && !HubModel.isRepoId("a--b/c"));
    }

    @Test
    void theCliTakesAHubIdAndThenWorksOffline() throws Exception {
        hub.add(REPO, MODEL, FakeHub.Access.PUBLIC);
        Path input = dir.resolve("in.safetensors");
        Map<String, Tensor> g = Reference.read(Reference.reference("hf/a/goldens.safetensors"));
        org.bloomtune.io.SafetensorsWriter.write(input, Map.of("input_ids", g.get("inputs.lp.input_ids"), "attention_mask", g.get("inputs.lp.attention_mask")));
        Map<String, String> env = Map.of("HF_ENDPOINT", hub.endpoint().toString(), "HF_HUB_CACHE", dir.resolve("cli-cache").toString());
        assertEquals(0, cli(env, "forward", "--model", REPO, "--input", input.toString(), "--output", dir.resolve("hub.safetensors").toString()));
        int requests = hub.log.size();
        hub.close();
        Map<String, String> offline = new java.util.HashMap<>(env);
        offline.put("HF_HUB_OFFLINE", "1");
        assertEquals(0, cli(offline, "forward", "--model", REPO, "--input", input.toString(), "--output", dir.resolve("offline.safetensors").toString()));
        assertEquals(requests, hub.log.size());
        assertEquals(0, cli(Map.of(), "forward", "--model", MODEL.toString(), "--input", input.toString(), "--output", dir.resolve("dir.safetensors").toString()));
        byte[] expected = Files.readAllBytes(dir.resolve("dir.safetensors"));
        assertArrayEquals(expected, Files.readAllBytes(dir.resolve("hub.safetensors")), "identical logits through the hub");
        assertArrayEquals(expected, Files.readAllBytes(dir.resolve("offline.safetensors")), "identical logits offline");
        assertEquals(2, cli(offline, "forward", "--model", "Langboat/missing", "--input", input.toString(), "--output", dir.resolve("x.safetensors").toString()));
    }

    /** The CLI in a JVM of its own, with these environment variables (the hub settings are read from the environment). */
    private int cli(Map<String, String> env, String... args) throws Exception {
        List<String> command = ChildJvm.cli();
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("cli.log").toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("HF_") || k.equals("TRANSFORMERS_OFFLINE"));
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the CLI did not finish: " + Files.readString(dir.resolve("cli.log")));
        }
        if (p.exitValue() == 2) assertTrue(Files.readString(dir.resolve("cli.log")).contains("HF_HUB_OFFLINE is set"), Files.readString(dir.resolve("cli.log")));
        return p.exitValue();
    }

}
