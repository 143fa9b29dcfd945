package dev.jreft.checkpoints;

import dev.jreft.hooks.testing.JavaProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A save killed (SIGKILL) at each of its file-system steps leaves the old checkpoint or the new one at the path,
 * readable and whole, the user's files untouched; the next save removes the debris.
 */
class CheckpointKillTest {
    /** Run in a second JVM: saves rank {@code args[2]} to {@code args[0]}, pausing before step {@code args[1]}. */
    public static final class Saver {
        public static void main(String[] args) throws Exception {
            CheckpointWriter.steps = step -> {
                if (step.equals(args[1])) {
                    System.out.print('P');
                    System.out.flush();
                    try {
                        Thread.sleep(120_000);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            };
            int rank = Integer.parseInt(args[2]);
            Checkpoint.save(Path.of(args[0]), CheckpointTest.config().put("rank", rank), CheckpointTest.tensors(rank),
                    CheckpointTest.FP);
        }
    }

    @Test
    void aKillAtAnyStepLeavesTheOldOrTheNewCheckpoint(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("ckpt");
        save(dir, 1);
        Files.writeString(dir.resolve("NOTES.txt"), "mine");
        int rank = 1;
        // from the usual layout (config.json names tensors.safetensors) every step of a replacing save happens
        for (String step : List.of("stage", "commit", "rename-tensors", "commit-usual-name", "remove-staged")) {
            save(dir, ++rank);
            killAt(dir, step, rank + 1);
            boolean committed = !step.equals("stage") && !step.equals("commit");
            assertCheckpoint(dir, committed ? rank + 1 : rank, step);
        }
        // killed while renaming its tensors, a save leaves config.json naming tensors.next.safetensors; a save from
        // there stages under tensors.safetensors
        save(dir, ++rank);
        killAt(dir, "rename-tensors", ++rank);
        assertEquals(CheckpointWriter.STAGED_TENSORS_FILE, Checkpoint.load(dir, null).config().get("tensors").asText());
        for (String step : List.of("stage", "commit", "remove-staged")) {
            killAt(dir, step, rank + 1);
            assertCheckpoint(dir, step.equals("remove-staged") ? rank + 1 : rank, "from tensors.next, " + step);
        }
        save(dir, 99);
        assertEquals(List.of(dir.resolve("NOTES.txt"), dir.resolve("config.json"), dir.resolve("tensors.safetensors")),
                CheckpointTest.list(dir), "the next save removed the debris");
        assertCheckpoint(dir, 99, "after a clean save");

        Path fresh = tmp.resolve("fresh");
        for (String step : List.of("stage", "install")) {
            killAt(fresh, step, 7);
            assertFalse(Files.exists(fresh), "a first save killed before " + step + " leaves no checkpoint");
        }
        save(fresh, 3);
        assertEquals(List.of(dir, fresh), CheckpointTest.list(tmp), "staging directories and lock files of the"
                + " killed saves are gone");
    }

    private static void save(Path dir, int rank) throws Exception {
        Checkpoint.save(dir, CheckpointTest.config().put("rank", rank), CheckpointTest.tensors(rank), CheckpointTest.FP);
    }

    /** A whole checkpoint of {@code rank} (its tensors hold the rank) is at {@code dir}, and the user's file. */
    private static void assertCheckpoint(Path dir, int rank, String when) throws Exception {
        Checkpoint c = Checkpoint.load(dir, CheckpointTest.FP);
        assertEquals(rank, c.config().get("rank").asInt(), when);
        assertEquals((float) rank, c.tensor("a").getFloat(0), "tensors match their config: " + when);
        assertEquals("mine", Files.readString(dir.resolve("NOTES.txt")), when);
    }

    private static void killAt(Path dir, String step, int rank) throws Exception {
        Process p = JavaProcess.builder(Saver.class, List.of(dir.toString(), step, Integer.toString(rank))).start();
        try (InputStream out = p.getInputStream()) {
            int b = out.read();
            if (b != 'P') {
                p.waitFor(30, TimeUnit.SECONDS);
                throw new AssertionError("the saver did not reach step " + step + " (read " + b + "); stderr: "
                        + new String(p.getErrorStream().readAllBytes()));
            }
        } finally {
            p.destroyForcibly();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        }
    }
}
