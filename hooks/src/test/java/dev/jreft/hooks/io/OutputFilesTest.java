package dev.jreft.hooks.io;

import dev.jreft.hooks.testing.JavaProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** File names from graphs stay inside their folder; output sets are all-or-nothing, locked and never eat user files. */
class OutputFilesTest {
    @Test
    void namesFromGraphsBecomeOnePlainFileName() {
        assertEquals("_.._.._x", SafeNames.fileName("../../x"));
        assertEquals("_tmp_victim", SafeNames.fileName("/tmp/victim"));
        assertEquals("_", SafeNames.fileName(""));
        assertEquals("_..", SafeNames.fileName(".."));
        assertEquals("tensor__transformer_h.0_Add_1_output_0", SafeNames.fileName("tensor:/transformer/h.0/Add_1_output_0"));
        assertEquals("blocks.0.block_output", SafeNames.fileName("blocks.0.block_output"));
        assertEquals(SafeNames.MAX_LENGTH, SafeNames.fileName("x".repeat(1000)).length());
        SafeNames names = new SafeNames();
        assertEquals("a_b.npy", names.unique("a/b", ".npy"));
        assertEquals("a_b~2.npy", names.unique("a_b", ".npy"));
        assertEquals("A_B~3.npy", names.unique("A:B", ".npy"), "case-insensitive file systems");
    }

    @Test
    void pathsFromConfigsMustStayInsideTheirFolder(@TempDir Path tmp) throws IOException {
        assertEquals(tmp.resolve("sub/x.npy"), SafeNames.inside(tmp, "sub/x.npy", "f"));
        for (String bad : List.of("../x", "/etc/passwd", "sub/../../x", ".")) {
            var e = assertThrows(IllegalArgumentException.class, () -> SafeNames.inside(tmp, bad, "tensors"));
            assertTrue(e.getMessage().startsWith("tensors: found '" + bad + "'; valid: a path inside"), e.getMessage());
        }
        Path outside = Files.writeString(Files.createTempFile("outside", ".data"), "secret");
        try {
            Files.createSymbolicLink(tmp.resolve("link.data"), outside);
            var e = assertThrows(IllegalArgumentException.class, () -> SafeNames.insideReal(tmp, "link.data", "loc"));
            assertTrue(e.getMessage().contains("a link to"), e.getMessage());
        } finally {
            Files.delete(outside);
        }
    }

    @Test
    void anOutputSetAppearsWholeWithAnIndexAndTheUsersPermissions(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out");
        try (OutputFolder f = OutputFolder.prepare(out, "cache")) {
            f.npy("../../escape", "output", Nd4j.ones(2, 3));
            f.npy("/tmp/victim", "output", Nd4j.ones(1));
            assertFalse(Files.exists(out), "nothing at the path before the commit");
            f.commit();
        }
        assertEquals(List.of(".._.._escape.npy", "_tmp_victim.npy", "index.json").stream().map(s -> s.startsWith(".")
                ? "_" + s : s).toList(), list(out));
        String index = Files.readString(out.resolve("index.json"));
        assertTrue(index.contains("\"name\" : \"../../escape\"") && index.contains("\"shape\" : [ 2, 3 ]"), index);
        assertEquals(List.of("out"), list(tmp), "no temporary folder and no lock file left beside the output");
        Path plain = Files.createFile(tmp.resolve("plain"));
        Path dir = Files.createDirectory(tmp.resolve("plainDir"));
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(out.resolve("index.json")));
        assertEquals(Files.getPosixFilePermissions(dir), Files.getPosixFilePermissions(out));
    }

    @Test
    void aFolderWithTheUsersFilesIsRefusedAndKept(@TempDir Path tmp) throws IOException {
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.writeString(out.resolve("NOTES.txt"), "mine");
        var e = assertThrows(IllegalArgumentException.class, () -> OutputFolder.prepare(out, "cache"));
        assertTrue(e.getMessage().contains("files jreft did not write (NOTES.txt)"), e.getMessage());
        assertTrue(e.getMessage().startsWith("--out: found the folder"), e.getMessage());
        assertEquals("mine", Files.readString(out.resolve("NOTES.txt")));
        Path file = Files.writeString(tmp.resolve("afile"), "x");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OutputFolder.prepare(file, "cache"))
                .getMessage().contains("found the file"));
        for (String bad : List.of("", ".", "/")) {
            var e2 = assertThrows(ConfigException.class, () -> OutputFolder.prepare(Path.of(bad), "cache"));
            assertTrue(e2.getMessage().startsWith("--out: found '" + bad + "'; valid: a folder"), e2.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OutputFolder.prepare(file.resolve("sub"),
                "cache")).getMessage().contains("is a file"));
    }

    @Test
    void anEarlierOutputIsReplacedWholeAndKeptWhenTheRunFails(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out");
        write(out, "first", "second");
        write(out, "third");
        assertEquals(List.of("index.json", "third.npy"), list(out));
        try (OutputFolder f = OutputFolder.prepare(out, "cache")) {
            f.npy("fourth", "hook", Nd4j.ones(1)); // the run fails before its commit
        }
        assertEquals(List.of("index.json", "third.npy"), list(out));
        assertEquals(List.of("out"), list(tmp));
    }

    @Test
    void whatAKilledRunLeftIsPutRight(@TempDir Path tmp) throws IOException {
        Path out = tmp.resolve("out");
        write(out, "old");
        // killed between its two renames: the old set moved aside, the new one still staged, nothing at the path
        Files.move(out, tmp.resolve(".out.old-0123456789ab"));
        Files.createDirectories(tmp.resolve(".out.tmp-0123456789ab"));
        Files.writeString(tmp.resolve(".out.lock"), "123 stale");
        try (OutputFolder f = OutputFolder.prepare(out, "cache")) {
            assertEquals(List.of("index.json", "old.npy"), list(out), "the earlier output is back");
        }
        assertEquals(List.of("out"), list(tmp));
    }

    @Test
    void aSecondRunOnTheSameOutputIsRefusedUntilTheFirstEnds(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        try (OutputFolder f = OutputFolder.prepare(out, "cache")) {
            var e = assertThrows(FolderLock.OutputLockedException.class, () -> OutputFolder.prepare(out, "cache"));
            assertTrue(e.getMessage().contains("another jreft run is writing it"), e.getMessage());
        }
        // another process holds the lock, then is killed: its lock file is left, and taken over
        Process p = JavaProcess.builder(LockHolder.class, List.of(out.toString())).start();
        try {
            assertEquals('L', p.getInputStream().read(), "the holder reports the lock");
            assertThrows(FolderLock.OutputLockedException.class, () -> FolderLock.acquire(out));
        } finally {
            p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        assertTrue(Files.exists(FolderLock.lockFile(out)), "a killed run leaves its lock file");
        FolderLock.acquire(out).close(); // the killed run's lock is free again, taken over and removed
        assertFalse(Files.exists(FolderLock.lockFile(out)));
    }

    /** A run stopped by SIGTERM (Ctrl-C, timeout) removes its staging folder and its lock file on the way out. */
    @Test
    void aStoppedRunPutsAwayItsStagingAndItsLock(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("deeper/out");
        Process p = JavaProcess.builder(Stager.class, List.of(out.toString())).start();
        try {
            assertEquals('S', p.getInputStream().read(), "the stager reports its staged file");
            assertTrue(Files.exists(FolderLock.lockFile(out)));
        } finally {
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        }
        assertEquals(List.of(), list(tmp), "no staging folder, no lock file and no folder it created");
    }

    /** Run in a second JVM: stages one file of an output set at args[0], then waits to be stopped. */
    public static final class Stager {
        public static void main(String[] args) throws Exception {
            OutputFolder f = OutputFolder.prepare(Path.of(args[0]), "test");
            f.npy("x", "hook", Nd4j.ones(3));
            System.out.print('S');
            System.out.flush();
            Thread.sleep(120_000);
        }
    }

    /** Run in a second JVM: holds the lock of args[0] until killed. */
    public static final class LockHolder {
        public static void main(String[] args) throws Exception {
            FolderLock.acquire(Path.of(args[0]));
            System.out.print('L');
            System.out.flush();
            Thread.sleep(120_000);
        }
    }

    private static void write(Path out, String... names) throws IOException {
        try (OutputFolder f = OutputFolder.prepare(out, "cache")) {
            for (String n : names) {
                f.npy(n, "hook", Nd4j.ones(1));
            }
            f.commit();
        }
    }

    private static List<String> list(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
