package org.bloomtune.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file under a temporary name in the target's directory, forces it to disk, then renames
 * it over the target: readers see the old file or the complete new one, never a torn write.
 */
public final class AtomicFiles {
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();

    private AtomicFiles() {}

    @FunctionalInterface
    public interface Body {
        void write(FileChannel out) throws IOException;
    }

    public static void write(Path target, Body body) {
        Path dir = target.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = dir.resolve("." + target.getFileName() + "." + Long.toUnsignedString(RANDOM.nextLong(), 36) + ".tmp");
            // CREATE_NEW applies the umask like any new file (createTempFile would make it owner-only).
            try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                body.write(out);
                out.force(true);
            }
            move(tmp, target);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target + ": " + e.getMessage(), e);
        } finally {
            deleteQuietly(tmp);
        }
    }

    public static void writeString(Path target, String text) {
        write(target, out -> {
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            while (buf.hasRemaining()) out.write(buf);
        });
    }

    /** Renames {@code from} to {@code to} atomically, replacing {@code to}. */
    public static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /**
     * A new, empty, hidden directory beside {@code target} ({@code .NAME.tag.RANDOM}) to build a
     * replacement in. Created like any directory, so it gets the user's usual permissions (umask),
     * not {@code Files.createTempDirectory}'s owner-only 0700 — a serving account must be able to
     * read the adapter once it is renamed into place.
     */
    public static Path newSiblingDirectory(Path target, String tag) throws IOException {
        Path parent = target.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        while (true) {
            Path dir = parent.resolve("." + target.getFileName() + "." + tag + Long.toUnsignedString(RANDOM.nextLong(), 36));
            try {
                return Files.createDirectory(dir);
            } catch (java.nio.file.FileAlreadyExistsException e) {
                // another name; collisions of 64 random bits are a formality
            }
        }
    }

    private static void deleteQuietly(Path p) {
        if (p == null) return;
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // The temporary file is only litter at this point; the real error, if any, is already thrown.
        }
    }

    /** Deletes {@code root} and everything under it. */
    public static void deleteTree(Path root) throws IOException {
        try (java.util.stream.Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    /** Puts the directory {@code fresh} in place of {@code target} (which may exist): renames, then deletes the old one. */
    public static void replaceDirectory(Path fresh, Path target) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            old = newSiblingDirectory(target, "old.");
            Files.delete(old);
            move(target, old);
        }
        move(fresh, target);
        if (old != null) deleteTree(old);
    }
}
