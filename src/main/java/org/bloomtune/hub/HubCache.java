package org.bloomtune.hub;

import org.bloomtune.io.AtomicFiles;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * One repository in the hub cache, laid out as huggingface_hub lays it out, so either reads what
 * the other wrote: {@code models--{org}--{name}/refs/{revision}} holds the 40-hex commit (no
 * newline); {@code snapshots/{commit}/{file}} is a relative link {@code ../../blobs/{etag}} (a copy
 * where links are impossible); {@code blobs/{etag}.incomplete} is a partial download, resumed later;
 * {@code .no_exist/{commit}/{file}} records a file the hub said does not exist.
 */
final class HubCache {
    static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    private final Path repo;

    HubCache(Path cache, String repoId) {
        this.repo = cache.resolve("models--" + repoId.replace("/", "--"));
    }

    Path directory() { return repo; }

    /** The commit {@code revision} points to here: itself if it is a commit, else what refs/ recorded. */
    Optional<String> commit(String revision) {
        if (COMMIT.matcher(revision).matches()) return Optional.of(revision);
        Path ref = repo.resolve("refs").resolve(revision);
        try {
            if (!Files.isRegularFile(ref)) return Optional.empty();
            String commit = Files.readString(ref).strip();
            return COMMIT.matcher(commit).matches() ? Optional.of(commit) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    void writeRef(String revision, String commit) {
        if (revision.equals(commit)) return;
        AtomicFiles.writeString(repo.resolve("refs").resolve(revision), commit);
    }

    Path snapshot(String commit) { return repo.resolve("snapshots").resolve(commit); }

    /** The file in the snapshot, if it is there and its blob is whole. */
    boolean has(String commit, String file) { return Files.isRegularFile(snapshot(commit).resolve(file)); }

    boolean knownMissing(String commit, String file) { return Files.exists(repo.resolve(".no_exist").resolve(commit).resolve(file)); }

    void markMissing(String commit, String file) {
        try {
            Path marker = repo.resolve(".no_exist").resolve(commit).resolve(file);
            Files.createDirectories(marker.getParent());
            if (!Files.exists(marker)) Files.createFile(marker);
        } catch (IOException e) {
            // only a hint for later runs; huggingface_hub ignores this failure too
        }
    }

    Path blob(String etag) { return repo.resolve("blobs").resolve(etag); }

    Path incomplete(String etag) { return repo.resolve("blobs").resolve(etag + ".incomplete"); }

    /** Puts the whole blob {@code etag} into the snapshot as {@code file}: a relative link, or a copy. */
    void link(String commit, String file, String etag) {
        Path pointer = snapshot(commit).resolve(file);
        Path blob = blob(etag);
        try {
            Files.createDirectories(pointer.getParent());
            Files.deleteIfExists(pointer);
            try {
                Files.createSymbolicLink(pointer, pointer.getParent().relativize(blob));
            } catch (UnsupportedOperationException | FileSystemException e) {
                Files.copy(blob, pointer);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + pointer + ": " + e.getMessage(), e);
        }
    }
}
