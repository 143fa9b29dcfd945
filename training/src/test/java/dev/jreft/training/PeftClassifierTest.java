package dev.jreft.training;

import dev.jreft.hooks.io.ConfigException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA, DoRA, adapters, IA3, prompt tuning, P-tuning and prefix tuning train through the classifier's one loop, save, reload and give the same logits. */
class PeftClassifierTest {
    static {
        ReftClassifierTest.load();
    }

    static final List<MethodSpec> METHODS = List.of(
            new MethodSpec.Lora("lora", List.of("encoder.layer.4.attention.self.query", "value"), 4, 8, 0.1, false),
            new MethodSpec.Lora("dora", "encoder\\.layer\\.[45]\\.attention\\.self\\.(query|value)", 4, 8, 0, true),
            new MethodSpec.Adapter(List.of("blocks.4.mlp_output", "blocks.5.mlp_output"), 16),
            new MethodSpec.Ia3(List.of("blocks.5.key_output", "blocks.5.value_output", "blocks.5.mlp_activation")),
            new MethodSpec.Prompt("prompt_tuning", 4, "sample_vocab", null, 0),
            new MethodSpec.Prompt("p_tuning", 4, "random", null, 32),
            new MethodSpec.Prompt("prefix_tuning", 4, "random", null, 0, false),
            new MethodSpec.Prompt("prefix_tuning", 4, "random", null, 16, true));

    @Test
    void everyMethodLearnsTheTinyTaskSavesAndReloads(@TempDir Path tmp) throws Exception {
        for (MethodSpec method : METHODS) {
            ReftClassifier c = ReftClassifier.create(ReftClassifierTest.model, new ReftClassifier.Config(method, 2,
                    ClassificationHead.Pooling.MEAN), 5);
            TrainingArguments args = learnsTheTinyTask(c, method);
            Path dir = tmp.resolve(method.type() + "-" + METHODS.indexOf(method));
            ReftCheckpoint.save(dir, c, "minilm", args, Map.of());
            String json = Files.readString(dir.resolve("config.json"));
            assertTrue(json.contains("\"method\" : \"" + method.type() + "\""), json);
            ReftClassifier back = ReftCheckpoint.load(dir, ReftClassifierTest.model);
            var batch = c.encode(List.of("The film was superb.", "What a dreadful meal."), 32);
            if (method instanceof MethodSpec.Prompt p && p.prefixProjection()) {
                // the checkpoint keeps the prefixes the MLP computes, not the MLP: plain prefix tuning on reload
                assertEquals(new MethodSpec.Prompt("prefix_tuning", 4, "random", null, 0, false),
                        back.config().method());
                assertTrue(back.parameters().containsKey("prompt_encoder.past.5.value")
                        && !back.parameters().containsKey("prompt_encoder.transform.0.weight"),
                        back.parameters().keySet().toString());
                assertTrue(json.contains("\"derived\"") && json.contains("\"encoder_hidden_size\" : 16"), json);
                double err = c.logits(batch).sub(back.logits(batch)).amaxNumber().doubleValue();
                assertTrue(err < 1e-5, "logits from the kept prefixes differ by " + err);
                continue;
            }
            assertEquals(c.config(), back.config(), method.type());
            assertEquals(c.logits(batch), back.logits(batch), method.type());
        }
    }

    /**
     * Trains {@code c} 3 epochs on the tiny task and checks that its loss falls and it classifies 85% or more;
     * returns the arguments it trained with.
     */
    static TrainingArguments learnsTheTinyTask(ReftClassifier c, MethodSpec method) {
        double lr = method instanceof MethodSpec.Ia3 ? 5e-2 : 1e-2;
        TrainingArguments args = new TrainingArguments(3, 8, lr, 0, 0.1, 1, 4, 0, 0, "adamw", 32);
        TrainingResult r = c.train(ReftClassifierTest.data, List.of(), args, new PrintStream(new ByteArrayOutputStream()));
        double first = r.losses().subList(0, 4).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        double last = r.losses().subList(r.steps() - 4, r.steps()).stream().mapToDouble(Double::doubleValue)
                .average().orElseThrow();
        assertTrue(last < first, method.type() + ": loss " + first + " -> " + last);
        double accuracy = c.accuracy(ReftClassifierTest.data, 16, 32);
        assertTrue(accuracy >= 0.85, method.type() + " accuracy " + accuracy);
        return args;
    }

    /** BitFit trains MiniLM's 49 biases, full finetuning its 101 weights: both learn, save, reload and merge. */
    @Test
    void bitfitAndFullFinetuningTrainTheModelsOwnWeights(@TempDir Path tmp) throws Exception {
        for (String type : List.of("bitfit", "full")) {
            ReftClassifier c = ReftClassifier.create(ReftClassifierTest.model, new ReftClassifier.Config(
                    new MethodSpec.Weights(type), 2, ClassificationHead.Pooling.MEAN), 5);
            assertEquals(type.equals("bitfit") ? 49 + 2 : 101 + 2, c.parameters().size(), type);
            INDArray before = c.parameters().get("encoder.layer.3.output.dense.bias").dup();
            TrainingArguments args = new TrainingArguments(2, 8, type.equals("full") ? 1e-4 : 1e-2, 0, 0.1, 1, 4, 0,
                    0, "adamw", 32);
            TrainingResult r = c.train(ReftClassifierTest.data, List.of(), args,
                    new PrintStream(new ByteArrayOutputStream()));
            double first = r.losses().subList(0, 2).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
            double last = r.losses().subList(r.steps() - 2, r.steps()).stream().mapToDouble(Double::doubleValue)
                    .average().orElseThrow();
            assertTrue(last < first, type + ": loss " + first + " -> " + last);
            assertTrue(c.parameters().get("encoder.layer.3.output.dense.bias").sub(before).amaxNumber().doubleValue()
                    > 0, type + " changed the model's own bias");
            Path dir = tmp.resolve(type);
            ReftCheckpoint.save(dir, c, "minilm", args, Map.of());
            ReftClassifier back = ReftCheckpoint.load(dir, ReftClassifierTest.model);
            var batch = c.encode(List.of("The film was superb.", "What a dreadful meal."), 32);
            assertEquals(c.logits(batch), back.logits(batch), type);
            // the frozen model is untouched: a fresh classifier starts from the pretrained weights again
            assertEquals(before, ReftClassifier.create(ReftClassifierTest.model, new ReftClassifier.Config(
                    new MethodSpec.Weights(type), 2, ClassificationHead.Pooling.MEAN), 5).parameters()
                    .get("encoder.layer.3.output.dense.bias"), type);
            var merged = ClassifierExport.merged(c);
            double err = ClassifierExport.parity(c, merged, List.of("Fine.", "Not my kind of place at all."));
            assertTrue(err < 1e-4, type + " merged: " + err);
        }
    }

    @Test
    void adapterPlacementsAndIa3DefaultsNameTheirHooks() {
        MethodSpec.Adapter houlsby = new TrainConfig.AdapterSpec(null, "houlsby", null)
                .toMethod(ReftClassifierTest.model);
        assertEquals(12, houlsby.hooks().size());
        assertTrue(houlsby.hooks().contains("blocks.0.attention_output")
                && houlsby.hooks().contains("blocks.5.mlp_output"));
        assertEquals(24, houlsby.bottleneckSize()); // d / 16
        assertEquals(List.of("blocks.0.mlp_output", "blocks.1.mlp_output", "blocks.2.mlp_output", "blocks.3.mlp_output",
                "blocks.4.mlp_output", "blocks.5.mlp_output"), new TrainConfig.AdapterSpec(null, null, 8)
                .toMethod(ReftClassifierTest.model).hooks());
        assertEquals(18, new TrainConfig.Ia3Spec(null).toMethod(ReftClassifierTest.model).hooks().size());
    }

    /** prompt tuning's text init: the embeddings of the text's tokens (special ones included, as peft's). */
    @Test
    void aTextInitStartsThePromptAtItsTokensEmbeddings() {
        var model = ReftClassifierTest.model;
        int[] ids = model.tokenizer().orElseThrow().encode(List.of("great film"), 64, 1).inputs()
                .get(dev.jreft.hooks.runtime.Batch.INPUT_IDS).toIntVector();
        ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config(new MethodSpec.Prompt(
                "prompt_tuning", ids.length, "text", "great film", 0), 2, ClassificationHead.Pooling.MEAN), 5);
        var table = dev.jreft.hooks.discovery.TokenEmbedding.of(model.graph()).orElseThrow();
        float[] all = model.graph().floats(table.table());
        INDArray prompt = c.parameters().get("prompt_encoder.prompt");
        for (int i = 0; i < ids.length; i++) {
            for (int j = 0; j < table.width(); j++) {
                assertEquals(all[(int) (ids[i] * table.width() + j)], prompt.getFloat(i, j), 0f);
            }
        }
        var wrong = assertThrows(ConfigException.class, () -> ReftClassifier.create(model, new ReftClassifier.Config(
                new MethodSpec.Prompt("prompt_tuning", ids.length + 1, "text", "great film", 0), 2,
                ClassificationHead.Pooling.MEAN), 5));
        assertTrue(wrong.getMessage().startsWith("prompt_tuning_init_text: "), wrong.getMessage());
    }

    /** Each sequence method takes only its own settings; a wrong one is a one-line error naming the field. */
    @Test
    void sequenceMethodSettingsBelongToTheirMethod() {
        var model = ReftClassifierTest.model;
        var projection = assertThrows(ConfigException.class, () -> new TrainConfig.PromptSpec(10, null, null, null,
                true).toMethod("prompt_tuning", model));
        assertTrue(projection.getMessage().startsWith("prompt.prefix_projection: found it for prompt_tuning"),
                projection.getMessage());
        var encoder = assertThrows(ConfigException.class, () -> new TrainConfig.PromptSpec(10, null, null, 64, null)
                .toMethod("prefix_tuning", model));
        assertTrue(encoder.getMessage().contains("without prefix_projection"), encoder.getMessage());
        var init = assertThrows(ConfigException.class, () -> new TrainConfig.PromptSpec(10, "sample_vocab", null,
                null, null).toMethod("p_tuning", model));
        assertTrue(init.getMessage().startsWith("prompt.prompt_tuning_init: found an init for p_tuning"),
                init.getMessage());
        var text = assertThrows(ConfigException.class, () -> new TrainConfig.PromptSpec(10, "text", null, null,
                null));
        assertTrue(text.getMessage().startsWith("prompt_tuning_init_text: found nothing"), text.getMessage());
        var none = assertThrows(ConfigException.class, () -> new TrainConfig.PromptSpec(0, null, null, null, null));
        assertTrue(none.getMessage().startsWith("num_virtual_tokens: found 0; valid: an integer in 1..65536"),
                none.getMessage());
        // P + max_length beyond the model's positions is refused before the first step, not at a long batch
        long positions = model.inputLimits().maxPositions().orElseThrow();
        ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config(new MethodSpec.Prompt("prefix_tuning",
                (int) positions - 40, "random", null, 0, false), 2, ClassificationHead.Pooling.MEAN), 5);
        var longer = assertThrows(ConfigException.class, () -> c.train(ReftClassifierTest.data, List.of(),
                new TrainingArguments(1, 8, 1e-2, 0, 0.1, 1, 4, 0, 0, "adamw", 48),
                new PrintStream(new ByteArrayOutputStream())));
        assertTrue(longer.getMessage().startsWith("training.max_length: found 48; valid: at most 40"),
                longer.getMessage());
        MethodSpec.Prompt defaults = new TrainConfig.PromptSpec(null, null, null, null, true)
                .toMethod("prefix_tuning", model);
        assertEquals(new MethodSpec.Prompt("prefix_tuning", 20, "random", null, 384, true), defaults);
    }

    @Test
    void loraParametersAreNamedByTheirModule() {
        ReftClassifier c = ReftClassifier.create(ReftClassifierTest.model, new ReftClassifier.Config(METHODS.get(0), 2,
                ClassificationHead.Pooling.MEAN), 5);
        assertTrue(c.parameters().containsKey("encoder.layer.4.attention.self.query.A"), c.parameters().keySet()
                .toString());
        assertTrue(c.parameters().containsKey("encoder.layer.0.attention.self.value.B"));
        // query of layer 4 and value of all 6 layers: 7 modules of 2 × 4 × 384, and the head
        assertEquals(7 * 2 * 4 * 384 + 384 * 2 + 2, c.trainableParameters());
    }

    @Test
    void targetsThatMatchNothingAndRanksThatDoNotFitAreConfigErrors() {
        var none = assertThrows(ConfigException.class, () -> ReftClassifier.create(ReftClassifierTest.model,
                new ReftClassifier.Config(new MethodSpec.Lora("lora", List.of("q_proj"), 4, 8, 0, false), 2,
                        ClassificationHead.Pooling.MEAN), 1));
        assertTrue(none.getMessage().startsWith("lora.target_modules: ") && none.getMessage().contains("query"),
                none.getMessage());
        var rank = assertThrows(ConfigException.class, () -> ReftClassifier.create(ReftClassifierTest.model,
                new ReftClassifier.Config(new MethodSpec.Lora("lora", "all-linear", 500, 8, 0, false), 2,
                        ClassificationHead.Pooling.MEAN), 1));
        assertTrue(rank.getMessage().startsWith("lora.r: found 500; valid: an integer in 1..384"), rank.getMessage());
    }
}
