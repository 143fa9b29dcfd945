package dev.jreft.training;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training on the embedded int8 MiniLM (minilm-q: MatMulInteger products) with the int8 base frozen: gradients pass
 * the quantised products by the straight-through estimator, so they are close to the float model's; every method
 * that keeps the base frozen learns; what would need float weights is refused in one line.
 */
class Int8ClassifierTest {
    static HookedModel int8;

    @BeforeAll
    static void load() {
        ReftClassifierTest.load();
        int8 = HookedModel.embedded("minilm-q");
    }

    static final List<MethodSpec> METHODS = List.of(
            new MethodSpec.Reft("loreft", List.of("blocks.1.block_output", "blocks.3.block_output"), 2, "f1+l1",
                    false, "linear", 0),
            new MethodSpec.Lora("lora", List.of("query", "value"), 4, 8, 0, false),
            new MethodSpec.Lora("dora", "encoder\\.layer\\.[45]\\.attention\\.self\\.(query|value)", 4, 8, 0, true),
            new MethodSpec.Adapter(List.of("blocks.4.mlp_output", "blocks.5.mlp_output"), 16),
            new MethodSpec.Ia3(List.of("blocks.5.key_output", "blocks.5.value_output", "blocks.5.mlp_activation")),
            new MethodSpec.Weights("bitfit"));

    @Test
    void straightThroughGradientsOnTheInt8BaseAreCloseToTheFloatModels() {
        var batch = List.of("The film was superb.", "What a dreadful meal.", "Service here is lovely.");
        int[] labels = {1, 0, 1};
        for (MethodSpec method : METHODS.subList(0, 2)) {
            var config = new ReftClassifier.Config(method, 2, ClassificationHead.Pooling.MEAN);
            ReftClassifier f = ReftClassifier.create(ReftClassifierTest.model, config, 7);
            // the same initial values on the int8 model (LoRA's B is zero at init: give it values so A gets a gradient)
            Map<String, INDArray> values = new java.util.LinkedHashMap<>();
            f.parameters().forEach((k, v) -> values.put(k, v.dup()));
            Nd4j.getRandom().setSeed(3);
            values.replaceAll((k, v) -> k.endsWith(".B") ? Nd4j.rand(v.dataType(), v.shape()).subi(0.5).muli(0.1) : v);
            f.assign(values);
            ReftClassifier q = ReftClassifier.withParameters(int8, config, values);
            double cos = cosine(flat(f.gradients(f.encode(batch, 32), labels)),
                    flat(q.gradients(q.encode(batch, 32), labels)));
            assertTrue(cos > 0.95, method.type() + ": cosine of the int8 and float gradients " + cos);
        }
    }

    @Test
    void everyMethodThatKeepsTheBaseFrozenLearnsOnTheInt8Model() {
        for (MethodSpec method : METHODS) {
            PeftClassifierTest.learnsTheTinyTask(ReftClassifier.create(int8, new ReftClassifier.Config(method, 2,
                    ClassificationHead.Pooling.MEAN), 5), method);
        }
    }

    /**
     * onnxruntime's optimiser rewrites the int8 products as DynamicQuantizeMatMul / MatMulIntegerToFloat and the GELU
     * as com.microsoft.Gelu, and the float model's as BiasGelu and FusedMatMul: both still train (their rules).
     */
    @Test
    void methodsTrainOnGraphsOnnxruntimeOptimised(@TempDir Path tmp) throws Exception {
        for (String resource : List.of("all-minilm-l6-v2-q.onnx", "all-minilm-l6-v2.onnx")) {
            HookedModel optimised = new HookedModel(dev.jreft.hooks.graph.OnnxGraph.load(
                    dev.jreft.hooks.testing.OrtOptimised.write(resource, tmp)),
                    ReftClassifierTest.model.tokenizer().orElseThrow(), dev.jreft.hooks.runtime.OrtRuntime.shared());
            for (MethodSpec method : METHODS.subList(0, 2)) {
                ReftClassifier c = ReftClassifier.create(optimised, new ReftClassifier.Config(method, 2,
                        ClassificationHead.Pooling.MEAN), 5);
                TrainingArguments args = new TrainingArguments(2, 8, 1e-2, 0, 0.1, 1, 4, 0, 0, "adamw", 32);
                TrainingResult r = c.train(ReftClassifierTest.data, List.of(), args,
                        new PrintStream(new ByteArrayOutputStream()));
                assertTrue(r.losses().get(r.steps() - 1) < r.losses().get(0), resource + " " + method.type()
                        + ": loss " + r.losses());
            }
        }
    }

    @Test
    void fullFinetuningAndMergingIntoInt8WeightsAreRefusedAndTheStandaloneExportRuns(@TempDir Path tmp)
            throws Exception {
        var full = assertThrows(ConfigException.class, () -> ReftClassifier.create(int8, new ReftClassifier.Config(
                new MethodSpec.Weights("full"), 2, ClassificationHead.Pooling.MEAN), 1));
        assertTrue(full.getMessage().contains("36 linear modules hold int8 weights"), full.getMessage());
        ReftClassifier lora = ReftClassifier.create(int8, new ReftClassifier.Config(METHODS.get(1), 2,
                ClassificationHead.Pooling.MEAN), 5);
        var merge = assertThrows(ConfigException.class, () -> ClassifierExport.merged(lora));
        assertTrue(merge.getMessage().contains("jreft export --format onnx"), merge.getMessage());
        // the standalone export keeps the int8 base and gives the trained model's logits
        var batch = lora.encode(List.of("The film was superb.", "What a dreadful meal."), 32);
        var graph = ClassifierExport.standalone(lora);
        assertTrue(graph.nodes().stream().anyMatch(n -> n.getOpType().equals("MatMulInteger")));
        HookedModel exported = new HookedModel(graph, null, dev.jreft.hooks.runtime.OrtRuntime.shared());
        INDArray logits = exported.run(batch).get(ClassifierExport.LOGITS);
        assertEquals(0, lora.logits(batch).castTo(DataType.DOUBLE).sub(logits.castTo(DataType.DOUBLE))
                .amaxNumber().doubleValue(), 1e-4);
    }

    private static INDArray flat(IntervenableModel.Gradients g) {
        List<INDArray> parts = new ArrayList<>();
        g.perSite().forEach(m -> m.values().forEach(v -> parts.add(v.reshape(-1).castTo(DataType.DOUBLE))));
        g.perEdit().forEach(m -> m.values().forEach(v -> parts.add(v.reshape(-1).castTo(DataType.DOUBLE))));
        return Nd4j.concat(0, parts.toArray(new INDArray[0]));
    }

    private static double cosine(INDArray a, INDArray b) {
        return a.mul(b).sumNumber().doubleValue() / (a.norm2Number().doubleValue() * b.norm2Number().doubleValue());
    }
}
