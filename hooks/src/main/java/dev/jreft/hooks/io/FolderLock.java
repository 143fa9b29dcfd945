package dev.jreft.hooks.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One jreft run at a time per output: a lock file {@code .<name>.lock} beside the output (a checkpoint, an output
 * folder), held with an operating-system file lock for the whole run. The OS releases the lock when the process
 * dies, so a killed run never blocks the next one.
 *
 * <p>The lock file stays when the run ends. Deleting it would let a run that opened it just before the delete lock
 * a file no longer at the path while a third run locks a new one; telling the two apart would need the inode of an
 * open file, which Java does not give, and reading the file back through a second descriptor would drop the POSIX
 * lock. It holds the process id of the last run that locked it.
 */
public final class FolderLock implements AutoCloseable {
    private final FileChannel channel;
    private final FileLock lock;

    private FolderLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
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
        Path file = lockFile(target);
        Files.createDirectories(file.getParent());
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
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
        ch.truncate(0).write(ByteBuffer.wrap(("pid " + ProcessHandle.current().pid() + "\n")
                .getBytes(StandardCharsets.UTF_8)), 0);
        return new FolderLock(ch, lock);
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }

    /** Another run writes the same output. */
    public static final class OutputLockedException extends IllegalArgumentException {
        public OutputLockedException(String message) {
            super(message);
        }
    }
}
