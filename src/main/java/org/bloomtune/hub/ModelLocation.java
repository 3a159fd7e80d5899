package org.bloomtune.hub;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** Where a model named by the user lives: a local directory as it is, a hub id through the cache. */
public final class ModelLocation {
    private ModelLocation() {}

    /**
     * @param dirOrRepoId a HuggingFace model directory, or a hub id such as {@code Langboat/bloom-1b4-zh}
     * @param revision    for a hub id: branch, tag or commit (null: main); must be null for a directory
     * @param progress    where download progress goes, or null
     */
    public static Path resolve(String dirOrRepoId, String revision, HubOptions options, PrintStream progress) {
        Path dir = Path.of(dirOrRepoId);
        if (Files.isDirectory(dir)) {
            if (revision != null) throw new IllegalArgumentException("a revision applies to hub ids, not to the directory " + dir);
            return dir;
        }
        if (HubModel.isRepoId(dirOrRepoId)) return HubModel.resolve(dirOrRepoId, revision, options, progress);
        throw new IllegalArgumentException(dirOrRepoId + ": no such directory, and not a hub id (org/name)");
    }
}
