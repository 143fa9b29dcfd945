package dev.jreft.hooks.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Writes files so a reader never sees half of one: a temporary file in the same folder, then a rename.
 *
 * <p>Temporary files and folders are created by name with the default permissions, so what jreft writes gets the
 * user's umask (as any other program's files), not the 0600 / 0700 of {@link Files#createTempFile}.
 */
public final class AtomicFiles {
    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {
    }

    /** Writes {@code bytes} to {@code target} atomically (replacing a file there), creating missing parent folders. */
    public static void write(Path target, byte[] bytes) throws IOException {
        Path abs = checkTarget(target);
        Files.createDirectories(abs.getParent());
        Path tmp = createTempFile(abs);
        try {
            writeAndSync(tmp, bytes);
            move(tmp, abs);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Checks that {@code target} can become a file: it is not a folder, and no existing ancestor is a file. Called
     * before long work so a bad output path fails in the first second, not after the training.
     *
     * @return the absolute, normalised path
     */
    public static Path checkTarget(Path target) {
        return checkTarget(target, target.toString());
    }

    /** As {@link #checkTarget(Path)}, naming the option or field the path came from ({@code what}) in errors. */
    public static Path checkTarget(Path target, String what) {
        if (target.toString().isEmpty()) {
            throw new ConfigException(what, "", "a file path");
        }
        Path abs = target.toAbsolutePath().normalize();
        if (abs.getParent() == null) {
            throw new ConfigException(what, target.toString(), "a file path, not the file system root");
        }
        if (Files.isDirectory(abs)) {
            throw new ConfigException(what, ConfigException.described("the folder " + target), "a file path (the"
                    + " file is written there)");
        }
        checkParent(target, abs.getParent());
        return abs;
    }

    /**
     * Checks a folder jreft will fill or replace ({@code --out}, a checkpoint): not empty text, not the file system
     * root, not the working directory or a folder above it (a run must never replace the folder it runs in).
     */
    public static Path checkFolder(Path folder, String what) {
        if (folder.toString().isEmpty()) {
            throw new ConfigException(what, "", "a folder path");
        }
        Path abs = folder.toAbsolutePath().normalize();
        Path cwd = Path.of("").toAbsolutePath().normalize();
        if (abs.getParent() == null || cwd.startsWith(abs)) {
            throw new ConfigException(what, folder.toString(), "a folder below the working directory or elsewhere;"
                    + " not the working directory, a folder above it or the root (jreft replaces what it writes)");
        }
        if (Files.isSymbolicLink(abs)) {
            throw new ConfigException(what, ConfigException.described("the symbolic link " + folder), "a real folder"
                    + " path (jreft replaces the folder itself; give the link's target)");
        }
        if (Files.exists(abs) && !Files.isDirectory(abs)) {
            throw new ConfigException(what, ConfigException.described("the file " + folder), "a folder");
        }
        checkParent(folder, abs.getParent());
        return abs;
    }

    /**
     * Refuses an output path that is one of the run's inputs (its config, data, checkpoint files): writing there
     * would destroy what the run reads.
     */
    public static void checkNotAnInput(Path target, String what, java.util.Collection<Path> inputs) {
        Path abs = target.toAbsolutePath().normalize();
        for (Path in : inputs) {
            if (in == null) {
                continue;
            }
            Path i = in.toAbsolutePath().normalize();
            boolean same = abs.equals(i) || abs.startsWith(i) && Files.isDirectory(i);
            try {
                same |= Files.exists(abs) && Files.exists(i) && Files.isSameFile(abs, i);
            } catch (IOException e) {
                // unreadable: the comparison by path stands
            }
            if (same) {
                throw new ConfigException(what, target.toString(), "a path that is not one of the run's inputs ("
                        + in + " is read by this run)");
            }
        }
    }

    /**
     * Refuses a path that exists but is not a regular file (a pipe, a device, a socket): reading one blocks or never
     * ends. {@code what} names the option or field.
     */
    public static void requireRegularFile(Path file, String what) {
        if (Files.exists(file) && !Files.isRegularFile(file) && !Files.isDirectory(file)) {
            throw new ConfigException(what, ConfigException.described("the special file " + file + " (a pipe, device"
                    + " or socket)"), "a regular file");
        }
    }

    /** What went wrong with a file, in words: "permission denied", "is a folder", or the system's reason. */
    public static String reason(IOException e) {
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "no such file";
        }
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        if (e instanceof java.nio.charset.CharacterCodingException) {
            return "not UTF-8 text";
        }
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m;
    }

    /** Checks that {@code folder} exists as a folder or can be created (no ancestor is a file). */
    static void checkParent(Path given, Path folder) {
        for (Path p = folder; p != null; p = p.getParent()) {
            if (Files.exists(p)) {
                if (!Files.isDirectory(p)) {
                    throw new IllegalArgumentException(given + ": " + p + " is a file, so nothing can be written under"
                            + " it; valid: a path whose folders are folders");
                }
                if (!Files.isWritable(p) && p.equals(folder)) {
                    throw new IllegalArgumentException(given + ": folder " + p + " is not writable");
                }
                return;
            }
        }
    }

    /** A new empty file beside {@code target}, named {@code .<name>.tmp-<random>}, with default permissions. */
    public static Path createTempFile(Path target) throws IOException {
        return createTemp(target, Files::createFile);
    }

    /** A new empty folder beside {@code target}, named {@code .<name>.tmp-<random>}, with default permissions. */
    public static Path createTempFolder(Path target) throws IOException {
        return createTemp(target, Files::createDirectory);
    }

    private interface Create {
        Path create(Path p, java.nio.file.attribute.FileAttribute<?>... attributes) throws IOException;
    }

    /** Creates by name (no attributes: the umask decides), retrying on the rare random-name collision. */
    private static Path createTemp(Path target, Create create) throws IOException {
        for (int attempt = 0; ; attempt++) {
            try {
                return create.create(tempSibling(target));
            } catch (FileAlreadyExistsException e) {
                if (attempt > 100) {
                    throw e;
                }
            }
        }
    }

    /** The prefix of every temporary name {@link #createTempFile} and {@link #createTempFolder} use for {@code name}. */
    public static String tempPrefix(String name) {
        return "." + name + ".tmp-";
    }

    private static Path tempSibling(Path target) {
        byte[] r = new byte[6];
        RANDOM.nextBytes(r);
        Path abs = target.toAbsolutePath();
        return abs.resolveSibling(tempPrefix(abs.getFileName().toString()) + HexFormat.of().formatHex(r));
    }

    /** Writes all bytes and forces them to the disk before returning. */
    public static void writeAndSync(Path file, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        }
    }

    /** Renames {@code from} over {@code to} atomically where the file system can, else as a plain replace. */
    public static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Best effort: flushes a folder's entries so a rename survives a crash; not every platform allows it. */
    public static void syncFolder(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // folders cannot be opened for sync on some platforms (Windows); the rename is still atomic
        }
    }

    /** Deletes a tree that jreft wrote (its own temporary or replaced folder); links are removed, not followed. */
    public static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (var walk = Files.walk(root)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
