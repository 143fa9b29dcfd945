package dev.jreft.hooks.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.UUID;

/**
 * One jreft run at a time per output: a lock file {@code .<name>.lock} beside the output (a checkpoint, an output
 * folder), held with an operating-system file lock for the whole run and deleted when the run ends. The OS releases
 * the lock when a process dies, so the file a killed run leaves is taken over (and then deleted) by the next run.
 *
 * <p>Deleting a lock file is safe only if a run that locks a file can tell that the path still names it: a run that
 * opened the file just before its owner deleted it could lock the unlinked file while a third run locks a new one.
 * So a run writes a random token through its locked channel and reads the path back through a second channel. That
 * second channel stays open until the lock is released, because closing any descriptor of a file drops the
 * process's POSIX locks on it.
 */
public final class FolderLock implements AutoCloseable {
    private final Path file;
    private final Path target;
    private final Path firstCreated;
    private final FileChannel channel;
    private final FileChannel check;
    private final FileLock lock;
    private boolean closed;

    private FolderLock(Path file, Path target, Path firstCreated, FileChannel channel, FileChannel check,
                       FileLock lock, boolean closeAtExit) {
        this.file = file;
        this.target = target;
        this.firstCreated = firstCreated;
        this.channel = channel;
        this.check = check;
        this.lock = lock;
        if (closeAtExit) {
            Cleanup.register(this);
        }
    }

    /** The lock file of {@code target}. */
    public static Path lockFile(Path target) {
        Path abs = target.toAbsolutePath().normalize();
        return abs.resolveSibling("." + abs.getFileName() + ".lock");
    }

    /**
     * Locks {@code target} for this run, creating missing parent folders.
     *
     * @throws OutputLockedException when another run (in this process or another) holds it
     */
    public static FolderLock acquire(Path target) throws IOException {
        return acquire(target, true);
    }

    /**
     * As {@link #acquire(Path)}; {@code closeAtExit} false when an owner that closes it (after putting its own
     * files away) is itself closed when the JVM is stopped.
     */
    static FolderLock acquire(Path target, boolean closeAtExit) throws IOException {
        Path file = lockFile(target);
        Path firstCreated = null; // the outermost folder this run creates, removed again if nothing is written
        for (Path p = file.getParent(); p != null && !Files.exists(p); p = p.getParent()) {
            firstCreated = p;
        }
        Files.createDirectories(file.getParent());
        for (int attempt = 0; attempt < 50; attempt++) {
            FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null; // this JVM holds it
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
            if (lock == null) {
                ch.close();
                throw new OutputLockedException(target + ": another jreft run is writing it (it holds " + file + ");"
                        + " wait for that run to end, or choose another output");
            }
            byte[] token = ("pid " + ProcessHandle.current().pid() + " " + UUID.randomUUID() + "\n")
                    .getBytes(StandardCharsets.UTF_8);
            ch.truncate(0).write(ByteBuffer.wrap(token), 0);
            FileChannel check = null;
            try {
                check = FileChannel.open(file, StandardOpenOption.READ);
                ByteBuffer back = ByteBuffer.allocate(token.length + 1);
                check.read(back, 0);
                if (back.position() == token.length && Arrays.equals(Arrays.copyOf(back.array(), token.length), token)) {
                    return new FolderLock(file, target.toAbsolutePath().normalize(), firstCreated, ch, check, lock,
                            closeAtExit);
                }
            } catch (NoSuchFileException e) {
                // deleted by the run that just ended: try again on a new file
            }
            lock.release();
            ch.close();
            if (check != null) {
                check.close();
            }
        }
        throw new OutputLockedException(target + ": could not lock it (its lock file " + file + " kept changing); is"
                + " another jreft run starting on it?");
    }

    /**
     * Deletes the lock file while holding the lock, then releases it; folders this run created for an output that
     * was never written are removed again (when still empty).
     */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        Cleanup.unregister(this);
        try {
            Files.deleteIfExists(file);
        } finally {
            try {
                lock.release();
            } finally {
                channel.close();
                check.close();
                removeCreatedFolders();
            }
        }
    }

    private void removeCreatedFolders() {
        if (firstCreated == null || Files.exists(target)) {
            return;
        }
        for (Path p = file.getParent(); p != null && p.startsWith(firstCreated); p = p.getParent()) {
            try {
                Files.delete(p); // fails, and stops, at the first folder that is not empty
            } catch (IOException e) {
                return;
            }
        }
    }

    /** Another run writes the same output. */
    public static final class OutputLockedException extends IllegalArgumentException {
        public OutputLockedException(String message) {
            super(message);
        }
    }
}
