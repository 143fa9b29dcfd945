package dev.jreft.training;

import dev.jreft.checkpoints.CheckpointFormatException;
import dev.jreft.checkpoints.FingerprintMismatchException;
import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReftCheckpointTest {
    static final ReftClassifier.Config CONFIG = new ReftClassifier.Config("loreft",
            List.of("blocks.2.block_output", "blocks.4.block_output"), 4, "f1+l1", false, 3,
            ClassificationHead.Pooling.FIRST, "gelu", 0.05);

    @Test
    void roundTripIsBitwiseAndGivesTheSameLogits(@TempDir Path tmp) throws Exception {
        HookedModel m = HookedModel.minilm();
        ReftClassifier c = ReftClassifier.create(m, CONFIG, 3);
        c.parameters().get("site1.W").muli(3); // something not at its initial value
        Path dir = tmp.resolve("ck");
        ReftCheckpoint.save(dir, c, "all-minilm-l6-v2", TrainingArguments.defaults(), Map.of("test_accuracy", 0.5));
        ReftClassifier back = ReftCheckpoint.load(dir, m);
        assertEquals(c.config(), back.config());
        for (var e : c.parameters().entrySet()) {
            assertEquals(e.getValue(), back.parameters().get(e.getKey()), e.getKey());
        }
        var batch = c.encode(List.of("A short sentence.", "Another, longer sentence for the test."), 32);
        assertEquals(c.logits(batch), back.logits(batch));
        assertEquals(TrainingArguments.defaults(), ReftCheckpoint.trainingArguments(dir));
        var asLm = org.junit.jupiter.api.Assertions.assertThrows(
                dev.jreft.checkpoints.CheckpointFormatException.class, () -> ReftCheckpoint.loadLanguageModel(dir, m));
        org.junit.jupiter.api.Assertions.assertTrue(asLm.getMessage().contains("task: found none (a classifier);"
                + " valid: 'causal_lm'"), asLm.getMessage());
        String json = Files.readString(dir.resolve("config.json"));
        assertTrue(json.contains("\"intervention\" : \"loreft\"") && json.contains("\"batch_size\""), json);
    }

    @Test
    void aDifferentModelIsRefused(@TempDir Path tmp) throws Exception {
        HookedModel m = HookedModel.minilm();
        Path dir = tmp.resolve("ck");
        ReftCheckpoint.save(dir, ReftClassifier.create(m, CONFIG, 3), "all-minilm-l6-v2", null, null);
        HookedModel bge = new HookedModel(OnnxGraph.fromResource("bge-small-en-v1.5.onnx"), null, OrtRuntime.shared());
        var e = assertThrows(FingerprintMismatchException.class, () -> ReftCheckpoint.load(dir, bge));
        assertTrue(e.getMessage().contains("load it with the model it was trained on"), e.getMessage());
    }

    /** A checkpoint whose tensors contradict its config is refused, naming the tensor and what was expected. */
    @Test
    void tensorsThatContradictTheConfigAreRefusedByName(@TempDir Path tmp) throws Exception {
        HookedModel m = HookedModel.minilm();
        ReftClassifier.Config config = new ReftClassifier.Config("loreft", List.of("blocks.1.block_output"), 2,
                "f1+l1", false, 2, ClassificationHead.Pooling.MEAN);
        Path good = tmp.resolve("good");
        ReftCheckpoint.save(good, ReftClassifier.create(m, config, 1), "all-minilm-l6-v2", null, null);
        ReftCheckpoint.load(good, m);

        assertRefused(tmp, good, m, t -> t.put("site0.W", t.get("site0.W").dup().putScalar(0, Float.NaN)),
                null, "tensor 'site0.W': found NaN at element 0; valid: finite values");
        assertRefused(tmp, good, m, t -> t.put("site0.W", t.get("site0.W").dup().putScalar(3,
                Float.POSITIVE_INFINITY)), null, "tensor 'site0.W': found Infinity at element 3");
        assertRefused(tmp, good, m, t -> t.put("site0.R", t.get("site0.R").mul(2)), null,
                "tensor 'site0.R': found rows that are not orthonormal");
        assertRefused(tmp, good, m, t -> t.put("site9.R", t.get("site0.R")), null,
                "tensor 'site9.R': found a tensor the config does not train");
        assertRefused(tmp, good, m, t -> t.remove("site1.b"), null,
                "tensor 'site1.b': found nothing; valid: a tensor of shape [2]");
        assertRefused(tmp, good, m, t -> t.put("head.W", t.get("head.W").reshape(2, 384)), null,
                "tensor 'head.W': found shape [2, 384]; valid: [384, 2]");
        // an I32 header over the F32 bytes: the sizes agree, the values would be garbage
        Path relabelled = Files.createDirectories(tmp.resolve("relabelled"));
        Files.copy(good.resolve("config.json"), relabelled.resolve("config.json"));
        byte[] bytes = Files.readAllBytes(good.resolve("tensors.safetensors"));
        String latin = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
        int at = latin.indexOf("\"dtype\":\"F32\"", latin.indexOf("\"site0.b\""));
        assertTrue(at > 0, "the header names site0.b's dtype");
        System.arraycopy("\"dtype\":\"I32\"".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1), 0, bytes, at, 13);
        Files.write(relabelled.resolve("tensors.safetensors"), bytes);
        var relabel = assertThrows(CheckpointFormatException.class, () -> ReftCheckpoint.load(relabelled, m));
        assertTrue(relabel.getMessage().contains("tensor 'site0.b': found dtype I32; valid: F32"), relabel.getMessage());
        // config.json edited by hand
        assertRefused(tmp, good, m, null, c -> c.put("share_weights", true),
                "tensor 'site1.R': found a tensor the config does not train");
        assertRefused(tmp, good, m, null, c -> c.put("intervention", "consreft"),
                "tensor 'site0.W': found a tensor the config does not train");
        assertRefused(tmp, good, m, null, c -> c.put("rank", 3), "tensor 'site0.R': found shape [2, 384]; valid:"
                + " [3, 384]");
        assertRefused(tmp, good, m, null, c -> c.put("intervention", "loreftt"), "reft.intervention: found"
                + " 'loreftt'; valid: loreft, noreft");
        assertRefused(tmp, good, m, null, c -> c.put("classes", 1), "reft.classes: found 1; valid: an integer in 2..65536");
        assertRefused(tmp, good, m, null, c -> c.putArray("hooks").add("blocks.9.block_output"), "reft.hooks[0]");
    }

    private static int copies;

    /** A copy of {@code good} with its tensors and/or its reft config edited must fail to load with {@code message}. */
    private static void assertRefused(Path tmp, Path good, HookedModel m,
                                      java.util.function.Consumer<Map<String, org.nd4j.linalg.api.ndarray.INDArray>> tensors,
                                      java.util.function.Consumer<com.fasterxml.jackson.databind.node.ObjectNode> reft,
                                      String message) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("edited" + copies++));
        Files.copy(good.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(good.resolve("tensors.safetensors"), dir.resolve("tensors.safetensors"));
        if (tensors != null) {
            var contents = SafeTensors.read(dir.resolve("tensors.safetensors"));
            Map<String, org.nd4j.linalg.api.ndarray.INDArray> t = new java.util.LinkedHashMap<>(contents.tensors());
            tensors.accept(t);
            Files.delete(dir.resolve("tensors.safetensors"));
            SafeTensors.write(dir.resolve("tensors.safetensors"), t, contents.metadata());
        }
        if (reft != null) {
            var json = new com.fasterxml.jackson.databind.ObjectMapper();
            var root = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(dir.resolve("config.json")
                    .toFile());
            reft.accept((com.fasterxml.jackson.databind.node.ObjectNode) root.get("reft"));
            Files.writeString(dir.resolve("config.json"), json.writeValueAsString(root));
        }
        var e = assertThrows(CheckpointFormatException.class, () -> ReftCheckpoint.load(dir, m), message);
        assertTrue(e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
    }
}
