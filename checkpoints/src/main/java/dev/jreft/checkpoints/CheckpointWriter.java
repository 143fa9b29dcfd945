package dev.jreft.checkpoints;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.FolderLock;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Saves checkpoints to one directory for the length of a run: {@link Checkpoint#prepare} checks and locks the
 * directory before the training starts; {@link #save} may run any number of times; {@link #close} unlocks.
 *
 * <p>Replacing a checkpoint never leaves its path without one, and never touches files it did not write (a user's
 * {@code NOTES.txt}, {@code plots/}): {@code config.json} is the commit record. It names the tensors file, and the
 * new tensors are staged under the name the current config does not use, so the one rename of {@code config.json}
 * switches from the old checkpoint, whole, to the new one, whole. The new tensors then take the usual name
 * {@code tensors.safetensors} by a hard link (a copy where links are not supported) and a second config rename. A
 * run killed at any step leaves the old or the new checkpoint, readable, plus debris the next {@code prepare}
 * removes. A new or empty directory is filled as a whole: a staging directory beside it, renamed into place.
 */
public final class CheckpointWriter implements AutoCloseable {
    /** Where a replacing save stages its tensors when the current config names {@link Checkpoint#TENSORS_FILE}. */
    public static final String STAGED_TENSORS_FILE = "tensors.next.safetensors";

    /** Called before each file-system step (its name); tests use it to fail or to pause a save there. */
    interface Steps {
        void before(String step) throws IOException;
    }

    static volatile Steps steps = step -> { };

    private final Path dir;
    private final FolderLock lock;

    private CheckpointWriter(Path dir, FolderLock lock) {
        this.dir = dir;
        this.lock = lock;
    }

    static CheckpointWriter prepare(Path given) throws IOException {
        if (given == null) {
            throw new IllegalArgumentException("checkpoint directory must not be null");
        }
        Path dir = given.toAbsolutePath().normalize();
        if (dir.getParent() == null) {
            throw new IllegalArgumentException("cannot save a checkpoint as the file system root " + dir);
        }
        if (Files.isSymbolicLink(dir)) {
            throw new IllegalArgumentException("cannot save checkpoint to " + dir + ": it is a symbolic link; give the"
                    + " folder it points to");
        }
        if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IllegalArgumentException("cannot save checkpoint to " + dir + ": it exists and is not a "
                    + "directory; remove it or choose another path");
        }
        for (Path p = dir.getParent(); p != null; p = p.getParent()) {
            if (Files.exists(p)) {
                if (!Files.isDirectory(p)) {
                    throw new IOException("cannot save checkpoint " + dir + ": " + p + " exists and is not a directory");
                }
                break;
            }
        }
        checkReplaceable(dir); // before the lock, so a refused path gets no lock file beside it
        FolderLock lock;
        try {
            lock = FolderLock.acquire(dir);
        } catch (FileAlreadyExistsException e) {
            throw new IOException("cannot save checkpoint " + dir + ": " + e.getFile() + " exists and is not a"
                    + " directory", e);
        }
        try {
            recoverSiblings(dir);
            checkReplaceable(dir);
            removeDebris(dir);
            return new CheckpointWriter(dir, lock);
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    private static void checkReplaceable(Path dir) throws IOException {
        if (!isEmpty(dir) && currentTensors(dir) == null) {
            throw new IllegalArgumentException("cannot save checkpoint to " + dir + ": the directory exists, is "
                    + "not empty and holds no jreft checkpoint (no " + Checkpoint.CONFIG_FILE + " with \"format\": \""
                    + Checkpoint.FORMAT + "\"); refusing to replace it. Choose an empty or new directory");
        }
        for (String name : List.of(Checkpoint.TENSORS_FILE, STAGED_TENSORS_FILE)) {
            Path p = dir.resolve(name);
            if (Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                throw new IllegalArgumentException("cannot save checkpoint to " + dir + ": " + name + " there is not a"
                        + " file (a folder or a link someone put there); refusing to replace it");
            }
        }
        if (Files.isDirectory(dir) && !Files.isWritable(dir)) {
            throw new IllegalArgumentException("cannot save checkpoint to " + dir + ": permission denied (the folder"
                    + " is not writable)");
        }
    }

    /** The checkpoint directory (absolute). */
    public Path dir() {
        return dir;
    }

    /** Writes a checkpoint (see {@link Checkpoint#save(Path, ObjectNode, Map, String)}). */
    public void save(ObjectNode config, Map<String, INDArray> tensors, String modelFingerprint) throws IOException {
        if (modelFingerprint == null || modelFingerprint.isBlank()) {
            throw new IllegalArgumentException("model fingerprint must not be blank: a checkpoint records which "
                    + "model it was trained on (HookedModel.fingerprint())");
        }
        // validates the tensors before anything touches the disk
        byte[] tensorBytes = SafeTensors.toBytes(tensors, Map.of(Checkpoint.FINGERPRINT_KEY, modelFingerprint));
        if (isEmpty(dir)) {
            saveFresh(config, tensorBytes, modelFingerprint);
        } else {
            replace(config, tensorBytes, modelFingerprint);
        }
        AtomicFiles.syncFolder(dir);
    }

    /** Absent or empty directory: everything in a staging directory beside it, then one rename. */
    private void saveFresh(ObjectNode config, byte[] tensorBytes, String fp) throws IOException {
        Files.createDirectories(dir.getParent());
        Path tmp = AtomicFiles.createTempFolder(dir);
        try {
            steps.before("stage");
            Files.write(tmp.resolve(Checkpoint.TENSORS_FILE), tensorBytes);
            forceFile(tmp.resolve(Checkpoint.TENSORS_FILE));
            writeFile(tmp.resolve(Checkpoint.CONFIG_FILE), Checkpoint.configBytes(config, fp, Checkpoint.TENSORS_FILE));
            AtomicFiles.syncFolder(tmp);
            steps.before("install");
            Files.deleteIfExists(dir); // an empty directory: the rename puts the full one in its place
            Files.move(tmp, dir);
            AtomicFiles.syncFolder(dir.getParent());
        } catch (IOException | RuntimeException | Error e) {
            try {
                AtomicFiles.deleteTree(tmp);
            } catch (IOException | RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /** An existing checkpoint: stage, commit by renaming config.json, then move the tensors to their usual name. */
    private void replace(ObjectNode config, byte[] tensorBytes, String fp) throws IOException {
        String current = currentTensors(dir);
        String staged = Checkpoint.TENSORS_FILE.equals(current) ? STAGED_TENSORS_FILE : Checkpoint.TENSORS_FILE;
        steps.before("stage");
        writeAtomically(dir.resolve(staged), tensorBytes);
        steps.before("commit");
        writeAtomically(dir.resolve(Checkpoint.CONFIG_FILE), Checkpoint.configBytes(config, fp, staged));
        // from here the new checkpoint is in place; what follows only restores the usual file name
        try {
            if (!staged.equals(Checkpoint.TENSORS_FILE)) {
                steps.before("rename-tensors");
                Path canonical = dir.resolve(Checkpoint.TENSORS_FILE);
                Path tmp = AtomicFiles.createTempFile(canonical);
                try {
                    Files.delete(tmp);
                    try {
                        Files.createLink(tmp, dir.resolve(staged));
                    } catch (UnsupportedOperationException | IOException noLinks) {
                        Files.copy(dir.resolve(staged), tmp);
                        forceFile(tmp);
                    }
                    AtomicFiles.move(tmp, canonical);
                } finally {
                    Files.deleteIfExists(tmp);
                }
                steps.before("commit-usual-name");
                writeAtomically(dir.resolve(Checkpoint.CONFIG_FILE),
                        Checkpoint.configBytes(config, fp, Checkpoint.TENSORS_FILE));
            }
            steps.before("remove-staged");
            Files.deleteIfExists(dir.resolve(STAGED_TENSORS_FILE));
        } catch (IOException e) {
            throw new IOException("checkpoint " + dir + " was saved, but moving its tensors to "
                    + Checkpoint.TENSORS_FILE + " failed (the next save tidies it): " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        lock.close();
    }

    /** The tensors file the directory's config names, or null when it holds no jreft checkpoint config. */
    private static String currentTensors(Path dir) {
        Path cfg = dir.resolve(Checkpoint.CONFIG_FILE);
        if (!Files.isRegularFile(cfg)) {
            return null;
        }
        try {
            JsonNode node = Checkpoint.JSON.readTree(cfg.toFile());
            if (node == null || !Checkpoint.FORMAT.equals(node.path("format").asText(null))) {
                return null;
            }
            return node.path("tensors").asText(Checkpoint.TENSORS_FILE);
        } catch (IOException e) {
            return null;
        }
    }

    /** Inside the directory: temporary files of a killed save, and the tensors file the config does not name. */
    private static void removeDebris(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        String current = currentTensors(dir);
        Pattern temp = Pattern.compile(Pattern.quote(AtomicFiles.tempPrefix(Checkpoint.CONFIG_FILE)) + ".*|"
                + Pattern.quote(AtomicFiles.tempPrefix(Checkpoint.TENSORS_FILE)) + ".*|"
                + Pattern.quote(AtomicFiles.tempPrefix(STAGED_TENSORS_FILE)) + ".*");
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) {
                String name = p.getFileName().toString();
                boolean unreferenced = current != null && !name.equals(current)
                        && (name.equals(STAGED_TENSORS_FILE) || name.equals(Checkpoint.TENSORS_FILE));
                if (temp.matcher(name).matches() || unreferenced) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    /**
     * Beside the directory: staging directories of a killed first save are deleted; a checkpoint that an earlier
     * jreft moved aside ({@code .<name>.old-*}) goes back if nothing took its place, else it is deleted.
     */
    private static void recoverSiblings(Path dir) throws IOException {
        String name = dir.getFileName().toString();
        Pattern staging = Pattern.compile(Pattern.quote(AtomicFiles.tempPrefix(name)) + "[0-9a-zA-Z-]+");
        Pattern aside = Pattern.compile(Pattern.quote("." + name + ".old-") + "[0-9a-fA-F-]+");
        List<Path> siblings;
        try (Stream<Path> s = Files.list(dir.getParent())) {
            siblings = s.sorted().toList();
        } catch (java.nio.file.NoSuchFileException e) {
            return;
        }
        for (Path p : siblings) {
            String n = p.getFileName().toString();
            boolean isAside = aside.matcher(n).matches() && currentTensors(p) != null;
            if (isAside && !Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                Files.move(p, dir);
            } else if (isAside || staging.matcher(n).matches() && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                AtomicFiles.deleteTree(p);
            }
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return true;
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        }
    }

    private static void writeAtomically(Path target, byte[] bytes) throws IOException {
        Path tmp = AtomicFiles.createTempFile(target);
        try {
            AtomicFiles.writeAndSync(tmp, bytes);
            AtomicFiles.move(tmp, target);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void writeFile(Path file, byte[] bytes) throws IOException {
        Files.write(file, bytes);
        forceFile(file);
    }

    private static void forceFile(Path file) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }
}
