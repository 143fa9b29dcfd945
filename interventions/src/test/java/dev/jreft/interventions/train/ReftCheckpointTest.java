package dev.jreft.interventions.train;

import dev.jreft.checkpoints.FingerprintMismatchException;
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
}
