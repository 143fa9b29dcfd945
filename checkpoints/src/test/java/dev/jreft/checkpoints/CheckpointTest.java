package dev.jreft.checkpoints;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointTest {
    static final String FP = "3f9a6c21b0d84e7f95a1c2d3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f6071";
    static final String OTHER_FP = "c0ffee00b0d84e7f95a1c2d3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f6071";
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static ObjectNode config() {
        ObjectNode c = JSON.createObjectNode();
        c.put("intervention", "loreft");
        c.put("rank", 4);
        c.put("format", "caller's own value, to be overwritten");
        c.putArray("sites").add("blocks.3.block_output");
        return c;
    }

    static Map<String, INDArray> tensors(float seed) {
        Map<String, INDArray> t = new LinkedHashMap<>();
        t.put("a", Nd4j.create(new float[] {seed, seed + 1}, new long[] {2}, 'c'));
        t.put("b", Nd4j.create(new float[] {seed + 2, seed + 3}, new long[] {2}, 'c'));
        return t;
    }

    static List<Path> list(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    static CheckpointFormatException rejects(Path dir, String... fragments) {
        CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> Checkpoint.load(dir, FP));
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        }
        return e;
    }

    @Test
    void saveThenLoadRoundTripsConfigTensorsAndFingerprint() throws Exception {
        Path dir = tmp.resolve("runs/exp1/ckpt");
        ObjectNode cfg = config();
        ObjectNode before = cfg.deepCopy();
        Map<String, INDArray> t = SafeTensorsTest.sampleTensors();
        Checkpoint.save(dir, cfg, t, FP);
        assertEquals(before, cfg, "the caller's config is not modified");
        assertEquals(List.of(dir.resolve("config.json"), dir.resolve("tensors.safetensors")), list(dir));
        // the user's umask, as for any file they create, not the 0600 / 0700 of Java's temp files
        Path plainFile = Files.createFile(tmp.resolve("plain"));
        Path plainDir = Files.createDirectory(tmp.resolve("plainDir"));
        assertEquals(Files.getPosixFilePermissions(plainFile), Files.getPosixFilePermissions(dir.resolve("config.json")));
        assertEquals(Files.getPosixFilePermissions(plainFile), Files.getPosixFilePermissions(
                dir.resolve("tensors.safetensors")));
        assertEquals(Files.getPosixFilePermissions(plainDir), Files.getPosixFilePermissions(dir));

        JsonNode onDisk = JSON.readTree(dir.resolve("config.json").toFile());
        assertEquals("jreft-checkpoint", onDisk.get("format").asText());
        assertEquals(1, onDisk.get("schema_version").asInt());
        assertEquals(FP, onDisk.get("model_fingerprint").asText());
        assertEquals("tensors.safetensors", onDisk.get("tensors").asText());
        assertEquals("loreft", onDisk.get("intervention").asText());
        assertEquals(Map.of("model_fingerprint", FP),
                SafeTensors.read(dir.resolve("tensors.safetensors")).metadata());

        Checkpoint c = Checkpoint.load(dir, FP);
        assertEquals(FP, c.modelFingerprint());
        assertEquals(onDisk, c.config());
        assertEquals(4, c.config().get("rank").asInt());
        SafeTensorsTest.assertBitwiseEqual(t, c.tensors());
        assertArrayEquals(SafeTensorsTest.bits(t.get("head.W")), SafeTensorsTest.bits(c.tensor("head.W")));
        c.config().put("rank", 99);
        assertEquals(4, c.config().get("rank").asInt(), "config() hands out copies");

        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> c.tensor("site1.R"));
        assertTrue(missing.getMessage().contains("no tensor 'site1.R'"), missing.getMessage());
        assertTrue(missing.getMessage().contains("site0.R") && missing.getMessage().contains("head.W"),
                missing.getMessage());
    }

    @Test
    void fingerprintMismatchIsRefusedWithBothModelsNamed() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        FingerprintMismatchException e = assertThrows(FingerprintMismatchException.class,
                () -> Checkpoint.load(dir, OTHER_FP));
        assertEquals("checkpoint " + dir + " was trained on model 3f9a6c21b0d8… but this model is c0ffee00b0d8…; "
                + "load it with the model it was trained on", e.getMessage());
        assertEquals(FP, e.checkpointFingerprint());
        assertEquals(OTHER_FP, e.modelFingerprint());

        assertEquals(FP, Checkpoint.load(dir, null).modelFingerprint(), "null skips the check");
    }

    @Test
    void shortenedFingerprintsStayDistinct() {
        String[] s = FingerprintMismatchException.shorten("abcdefabcdefabcdef01", "abcdefabcdefabcdef02");
        assertFalse(s[0].equals(s[1]), Arrays.toString(s));
        assertArrayEquals(new String[] {"short", "other"}, FingerprintMismatchException.shorten("short", "other"));
    }

    @Test
    void truncatedTensorsFileIsRejected() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Path f = dir.resolve("tensors.safetensors");
        byte[] raw = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(raw, raw.length - 3));
        CheckpointFormatException e = rejects(dir, f.toString(), "tensor 'b'", "beyond the end of the data section",
                "truncated");
        Files.write(f, Arrays.copyOf(raw, 5));
        rejects(dir, f.toString(), "shorter than the 8-byte header length");
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
    }

    @Test
    void corruptedHeaderJsonIsRejected() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Path f = dir.resolve("tensors.safetensors");
        byte[] raw = Files.readAllBytes(f);
        raw[8] = '#';
        Files.write(f, raw);
        rejects(dir, f.toString(), "header is not valid JSON");
    }

    @Test
    void badOffsetsAreRejected() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Path f = dir.resolve("tensors.safetensors");
        byte[] raw = Files.readAllBytes(f);
        String s = new String(raw, StandardCharsets.ISO_8859_1);
        assertTrue(s.contains("\"data_offsets\":[8,16]"), s);
        Files.write(f, s.replace("\"data_offsets\":[8,16]", "\"data_offsets\":[4,12]")
                .getBytes(StandardCharsets.ISO_8859_1));
        rejects(dir, f.toString(), "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'");
        Files.write(f, s.replace("\"data_offsets\":[8,16]", "\"data_offsets\":[8,20]")
                .getBytes(StandardCharsets.ISO_8859_1));
        rejects(dir, f.toString(), "spanning 12 bytes", "needs 8");
    }

    @Test
    void missingOrWrongPiecesAreNamed() throws Exception {
        rejects(tmp.resolve("nowhere"), "there is no such file or folder");
        Path file = Files.writeString(tmp.resolve("plain.txt"), "x");
        rejects(file, "is not a directory");

        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Path cfg = dir.resolve("config.json");
        String good = Files.readString(cfg);

        Files.delete(dir.resolve("tensors.safetensors"));
        rejects(dir, "has no tensors.safetensors", "incomplete");
        Checkpoint.save(dir, config(), tensors(1), FP);

        Files.writeString(cfg, "{ not json");
        rejects(dir, cfg.toString(), "is not valid JSON");
        Files.writeString(cfg, good.replace("\"jreft-checkpoint\"", "\"pytorch-state-dict\""));
        rejects(dir, "\"format\": \"pytorch-state-dict\"", "expected \"jreft-checkpoint\"");
        Files.writeString(cfg, good.replace("\"schema_version\" : 1", "\"schema_version\" : 2"));
        rejects(dir, "schema_version 2", "supported: [1]", "newer jreft");
        Files.writeString(cfg, good.replace("\"schema_version\" : 1", "\"schema_version\" : \"one\""));
        rejects(dir, "integer \"schema_version\"", "supported: [1]");
        Files.writeString(cfg, good.replace("\"tensors.safetensors\"", "\"../elsewhere.safetensors\""));
        rejects(dir, "must name a file inside the checkpoint directory");

        // config and tensors from different models: the files do not belong together
        Files.writeString(cfg, good.replace(FP, OTHER_FP));
        CheckpointFormatException split = assertThrows(CheckpointFormatException.class,
                () -> Checkpoint.load(dir, OTHER_FP));
        assertTrue(split.getMessage().contains("different checkpoints"), split.getMessage());
        assertThrows(CheckpointFormatException.class, () -> Checkpoint.load(dir, null));

        Files.delete(cfg);
        rejects(dir, "has no config.json");
    }

    @Test
    void overwritingReplacesTheCheckpointAndLeavesNoTemporaryDirectories() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Checkpoint.save(dir, config().put("rank", 8), tensors(10), OTHER_FP);
        assertEquals(List.of(dir), list(tmp));
        assertEquals(List.of(dir.resolve("config.json"), dir.resolve("tensors.safetensors")), list(dir));
        Checkpoint c = Checkpoint.load(dir, OTHER_FP);
        assertEquals(8, c.config().get("rank").asInt());
        assertEquals(10f, c.tensor("a").getFloat(0));
        Checkpoint.save(dir, null, Map.of(), FP);
        assertEquals(List.of(dir), list(tmp));
        assertTrue(Checkpoint.load(dir, FP).tensors().isEmpty());
    }

    @Test
    void savingUnderARegularFileFailsWithoutLeavingAnything() throws Exception {
        Path notADir = Files.writeString(tmp.resolve("file.txt"), "keep me");
        IOException e = assertThrows(IOException.class,
                () -> Checkpoint.save(notADir.resolve("ckpt"), config(), tensors(1), FP));
        assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
        assertEquals(List.of(notADir), list(tmp));
        assertEquals("keep me", Files.readString(notADir));
    }

    @Test
    void refusesToReplaceSomethingThatIsNotACheckpoint() throws Exception {
        Path userDir = tmp.resolve("mydata");
        Files.createDirectories(userDir);
        Files.writeString(userDir.resolve("notes.txt"), "precious");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Checkpoint.save(userDir, config(), tensors(1), FP));
        assertTrue(e.getMessage().contains("refusing to replace"), e.getMessage());
        assertEquals(List.of(userDir.resolve("notes.txt")), list(userDir));
        Path file = tmp.resolve("file");
        Files.writeString(file, "x");
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.save(file, config(), tensors(1), FP));
        assertEquals(List.of(file, userDir), list(tmp));

        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Checkpoint.save(empty, config(), tensors(1), FP);
        assertEquals(FP, Checkpoint.load(empty, FP).modelFingerprint());
    }

    @Test
    void invalidTensorsFailBeforeTouchingTheDisk() {
        Path dir = tmp.resolve("ckpt");
        Map<String, INDArray> bad = Map.of("mask", Nd4j.createFromArray(true, false));
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.save(dir, config(), bad, FP));
        assertThrows(IllegalArgumentException.class, () -> Checkpoint.save(dir, config(), tensors(1), " "));
        assertFalse(Files.exists(dir));
    }

    @Test
    void filesTheUserPutInACheckpointSurviveRetraining() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Files.writeString(dir.resolve("NOTES.txt"), "lr 4e-3 looked best");
        Files.createDirectories(dir.resolve("plots"));
        Files.writeString(dir.resolve("plots/loss.svg"), "<svg/>");
        for (int k = 2; k <= 4; k++) {
            Checkpoint.save(dir, config().put("rank", k), tensors(k), FP);
            assertEquals(k, Checkpoint.load(dir, FP).config().get("rank").asInt());
            assertEquals(List.of(dir.resolve("NOTES.txt"), dir.resolve("config.json"), dir.resolve("plots"),
                    dir.resolve("tensors.safetensors")), list(dir));
        }
        assertEquals("lr 4e-3 looked best", Files.readString(dir.resolve("NOTES.txt")));
        assertEquals("<svg/>", Files.readString(dir.resolve("plots/loss.svg")));
    }

    @Test
    void aSecondWriterOfTheSamePathIsRefusedWhileTheFirstRuns() throws Exception {
        Path dir = tmp.resolve("ckpt");
        try (CheckpointWriter w = Checkpoint.prepare(dir)) {
            var e = assertThrows(dev.jreft.hooks.io.FolderLock.OutputLockedException.class,
                    () -> Checkpoint.save(dir, config(), tensors(2), FP));
            assertTrue(e.getMessage().contains("another jreft run is writing it"), e.getMessage());
            w.save(config(), tensors(1), FP); // the holder saves as often as it likes
            w.save(config().put("rank", 5), tensors(5), FP);
        }
        assertEquals(5, Checkpoint.load(dir, FP).config().get("rank").asInt());
        Checkpoint.save(dir, config(), tensors(3), FP); // free again
    }

    @Test
    void aFailedSaveLeavesThePreviousCheckpointAndTheNextSaveTidiesUp() throws Exception {
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        for (String step : List.of("stage", "commit")) {
            CheckpointWriter.steps = s -> {
                if (s.equals(step)) {
                    throw new IOException("simulated failure at " + s);
                }
            };
            try {
                IOException e = assertThrows(IOException.class,
                        () -> Checkpoint.save(dir, config(), tensors(10), OTHER_FP));
                assertTrue(e.getMessage().contains("simulated failure at " + step), e.getMessage());
            } finally {
                CheckpointWriter.steps = s -> { };
            }
            assertEquals(1f, Checkpoint.load(dir, FP).tensor("a").getFloat(0), "the previous checkpoint is in place");
        }
        CheckpointWriter.steps = s -> {
            if (s.equals("rename-tensors")) {
                throw new IOException("simulated failure at " + s);
            }
        };
        try {
            Checkpoint.save(dir, config(), tensors(10), OTHER_FP); // staged under tensors.next.safetensors
            Checkpoint.save(dir, config(), tensors(20), OTHER_FP); // tensors.safetensors is the free name now
        } catch (IOException e) {
            assertTrue(e.getMessage().contains("was saved"), e.getMessage());
        } finally {
            CheckpointWriter.steps = s -> { };
        }
        assertTrue(Checkpoint.load(dir, OTHER_FP).tensor("a").getFloat(0) >= 10f, "the new checkpoint is in place");
        Checkpoint.save(dir, config(), tensors(30), FP);
        assertEquals(30f, Checkpoint.load(dir, FP).tensor("a").getFloat(0));
        assertEquals(List.of(dir.resolve("config.json"), dir.resolve("tensors.safetensors")), list(dir));

        Path fresh = tmp.resolve("fresh");
        CheckpointWriter.steps = s -> {
            throw new IOException("simulated failure at " + s);
        };
        try {
            assertThrows(IOException.class, () -> Checkpoint.save(fresh, config(), tensors(1), FP));
        } finally {
            CheckpointWriter.steps = s -> { };
        }
        assertEquals(List.of(dir), list(tmp), "a failed first save leaves nothing");
    }

    @Test
    void checkpointsLeftAsideByOlderJreftAreRecovered() throws Exception {
        // jreft before 0.2 replaced a checkpoint by two directory renames; a kill between them left only the aside
        Path dir = tmp.resolve("ckpt");
        Checkpoint.save(dir, config(), tensors(1), FP);
        Path aside = tmp.resolve(".ckpt.old-0c9e0b9e-1d6f-4f0e-9a3b-2f3a4b5c6d7e");
        Files.move(dir, aside);
        Files.createDirectories(tmp.resolve(".ckpt.tmp-1234567890"));
        try (CheckpointWriter w = Checkpoint.prepare(dir)) {
            assertEquals(1f, Checkpoint.load(dir, FP).tensor("a").getFloat(0), "moved back");
        }
        assertEquals(List.of(dir), list(tmp));
    }
}
