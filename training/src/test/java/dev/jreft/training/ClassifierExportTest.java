package dev.jreft.training;

import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Merged graphs compute what the unmerged classifier computes; peft folders hold peft's names and shapes. */
class ClassifierExportTest {
    static {
        ReftClassifierTest.load();
    }

    static final List<String> TEXTS = List.of("The film was superb.", "What a dreadful, dreadful meal that was.",
            "Fine.");

    /** A classifier whose parameters are all away from their (identity) start, so every term of the merge counts. */
    static ReftClassifier perturbed(MethodSpec method, ClassificationHead.Pooling pooling) {
        ReftClassifier c = ReftClassifier.create(ReftClassifierTest.model, new ReftClassifier.Config(method, 3,
                pooling), 11);
        Nd4j.getRandom().setSeed(3);
        c.parameters().forEach((name, v) -> v.addi(Nd4j.randn(DataType.FLOAT, v.shape()).muli(0.05)));
        return c;
    }

    static double mergedError(ReftClassifier c) {
        OnnxGraph merged = ClassifierExport.merged(c);
        HookedModel plain = new HookedModel(merged, ReftClassifierTest.model.tokenizer().orElseThrow(),
                OrtRuntime.shared());
        Batch batch = c.encode(TEXTS, 32);
        INDArray expected = c.logits(batch);
        INDArray got = plain.run(batch).get(ClassifierExport.LOGITS);
        assertArrayEquals(expected.shape(), got.shape());
        return got.sub(expected).amaxNumber().doubleValue();
    }

    @Test
    void mergedLoraDoraAndIa3GraphsGiveTheClassifiersLogits() {
        for (MethodSpec method : List.of(PeftClassifierTest.METHODS.get(0), PeftClassifierTest.METHODS.get(1),
                PeftClassifierTest.METHODS.get(3), new MethodSpec.Ia3(List.of("blocks.2.key_output",
                        "blocks.2.value_output", "blocks.2.mlp_activation")))) {
            double err = mergedError(perturbed(method, ClassificationHead.Pooling.MEAN));
            assertTrue(err < 2e-4, method.type() + " merged vs unmerged logits: " + err);
        }
        for (ClassificationHead.Pooling p : List.of(ClassificationHead.Pooling.FIRST, ClassificationHead.Pooling.LAST)) {
            double err = mergedError(perturbed(PeftClassifierTest.METHODS.get(0), p));
            assertTrue(err < 2e-4, p + ": " + err);
        }
    }

    @Test
    void methodsWithoutAWeightFormAreRefusedWithTheReason() {
        for (MethodSpec method : List.of(PeftClassifierTest.METHODS.get(2), new MethodSpec.Reft("loreft",
                List.of("blocks.1.block_output"), 2, "f1+l1", true, "linear", 0))) {
            ConfigException e = assertThrows(ConfigException.class, () -> ClassifierExport.merged(
                    perturbed(method, ClassificationHead.Pooling.MEAN)));
            String found = "--checkpoint: found " + ClassifierExport.article(method.type()) + " " + method.type();
            assertTrue(e.getMessage().startsWith(found + " checkpoint")
                    && e.getMessage().contains("valid: a LoRA, DoRA, IA3, BitFit or full checkpoint"), e.getMessage());
        }
    }

    /**
     * The standalone export computes what jreft computes for every method, ReFT and adapters included: parameters
     * frozen, positions (first / last real tokens of rows of different lengths, or every position) from the mask.
     */
    @Test
    void standaloneGraphsGiveTheClassifiersLogitsForEveryMethod() {
        List<MethodSpec> methods = List.of(new MethodSpec.Reft("loreft", List.of("blocks.1.block_output",
                        "blocks.3.block_output"), 2, "f2+l1", false, "gelu", 0.1),
                new MethodSpec.Reft("direft", List.of("blocks.2.block_output"), 2, "l2", true, "linear", 0),
                PeftClassifierTest.METHODS.get(2), PeftClassifierTest.METHODS.get(0), PeftClassifierTest.METHODS.get(3));
        for (MethodSpec method : methods) {
            ReftClassifier c = perturbed(method, ClassificationHead.Pooling.LAST);
            HookedModel standalone = new HookedModel(ClassifierExport.standalone(c),
                    ReftClassifierTest.model.tokenizer().orElseThrow(), OrtRuntime.shared());
            Batch batch = c.encode(TEXTS, 32);
            double err = standalone.run(batch).get(ClassifierExport.LOGITS).sub(c.logits(batch)).amaxNumber()
                    .doubleValue();
            assertTrue(err < 2e-4, method.type() + " standalone vs jreft logits: " + err);
            assertEquals(ReftClassifierTest.model.graph().inputNames(), standalone.graph().inputNames(),
                    method.type() + ": the export takes only the model's own inputs");
        }
    }

    @Test
    void aPeftFolderHasPeftsKeysShapesAndConfig(@TempDir Path tmp) throws Exception {
        ReftClassifier c = perturbed(PeftClassifierTest.METHODS.get(1), ClassificationHead.Pooling.MEAN); // DoRA
        Path dir = tmp.resolve("peft");
        ClassifierExport.peft(c, "minilm", dir);
        var tensors = SafeTensors.read(dir.resolve("adapter_model.safetensors")).tensors();
        String key = "base_model.model.encoder.layer.5.attention.self.value";
        assertArrayEquals(new long[] {4, 384}, tensors.get(key + ".lora_A.weight").shape());
        assertArrayEquals(new long[] {384, 4}, tensors.get(key + ".lora_B.weight").shape());
        assertArrayEquals(new long[] {384}, tensors.get(key + ".lora_magnitude_vector.weight").shape());
        assertEquals(c.parameters().get("encoder.layer.5.attention.self.value.A"), tensors.get(key + ".lora_A.weight"));
        assertEquals(4 * 3, tensors.size());
        String config = Files.readString(dir.resolve("adapter_config.json"));
        for (String f : List.of("\"peft_type\" : \"LORA\"", "\"use_dora\" : true", "\"use_rslora\" : true",
                "\"r\" : 4", "\"base_model_name_or_path\" : \"sentence-transformers/all-MiniLM-L6-v2\"",
                "\"encoder.layer.4.attention.self.query\"")) {
            assertTrue(config.contains(f), f + " in " + config);
        }
        assertTrue(Files.exists(dir.resolve("head.safetensors")));
        assertThrows(ConfigException.class, () -> ClassifierExport.peft(perturbed(PeftClassifierTest.METHODS.get(3),
                ClassificationHead.Pooling.MEAN), "minilm", tmp.resolve("ia3")));
    }
}
