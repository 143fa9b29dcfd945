package dev.jreft.training;

import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Orthogonal;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoReFT and LoRA on the causal fixtures (GPT-2, Llama with grouped-query attention) learn to continue sequences. */
class CausalLanguageModelTest {
    static List<CausalLanguageModel.TokenExample> sequences(int n, Random r) {
        List<CausalLanguageModel.TokenExample> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long[] ids = new long[6 + i % 3];
            for (int t = 0; t < ids.length; t++) {
                ids[t] = 1 + r.nextInt(100);
            }
            out.add(new CausalLanguageModel.TokenExample(ids, 2));
        }
        return out;
    }

    @Test
    void loreftLowersTheLanguageModelLossOnGpt2AndLlama() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        for (String file : List.of("models/gpt2/gpt2_op17.onnx", "models/llama/llama_op17.onnx")) {
            HookedModel m = HookedModel.load(dir.get().resolve(file));
            CausalLanguageModel lm = CausalLanguageModel.create(m, new CausalLanguageModel.Config("loreft",
                    List.of("blocks.0.block_output", "blocks.1.block_output"), 4, "f8", true), 1);
            List<CausalLanguageModel.TokenExample> data = sequences(8, new Random(2));
            double before = lm.loss(data);
            TrainingArguments args = new TrainingArguments(30, 8, 2e-2, 0, 0.1, 1, 5, 0, 0, "adamw", 16);
            TrainingResult r = lm.train(data, args, new PrintStream(new ByteArrayOutputStream()));
            double after = lm.loss(data);
            assertTrue(after < before * 0.7, file + ": loss " + before + " -> " + after);
            assertTrue(Math.abs(r.losses().get(r.losses().size() - 1) - after) < 0.5 * after + 0.5, file);
            lm.parameters().forEach((k, v) -> {
                if (k.endsWith(".R")) {
                    assertTrue(Orthogonal.deviation(v, false) < 1e-5, k);
                }
            });
        }
    }

    @Test
    void loraLowersTheLanguageModelLossOnGpt2AndLlamaAndOnlyItsFactorsMove() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        // peft's default targets: GPT-2's fused c_attn (a Conv1D), Llama's q_proj and v_proj
        for (var c : List.of(List.of("models/gpt2/gpt2_op17.onnx", "c_attn"),
                List.of("models/llama/llama_op17.onnx", "q_proj", "v_proj"))) {
            HookedModel m = HookedModel.load(dir.get().resolve(c.get(0)));
            CausalLanguageModel lm = CausalLanguageModel.create(m, new CausalLanguageModel.Config(new MethodSpec.Lora(
                    "lora", c.subList(1, c.size()), 8, 16, 0, false)), 1);
            List<CausalLanguageModel.TokenExample> data = sequences(8, new Random(2));
            double before = lm.loss(data);
            lm.train(data, new TrainingArguments(30, 8, 2e-2, 0, 0.1, 1, 5, 0, 0, "adamw", 16),
                    new PrintStream(new ByteArrayOutputStream()));
            double after = lm.loss(data);
            assertTrue(after < before * 0.7, c.get(0) + ": loss " + before + " -> " + after);
            assertTrue(lm.parameters().keySet().stream().allMatch(k -> k.endsWith(".A") || k.endsWith(".B")),
                    lm.parameters().keySet().toString());
        }
    }

    /** The sequence methods on causal exports without past: prefixes through the spliced keys and values. */
    @Test
    void promptPTuningAndPrefixLowerTheLanguageModelLossOnGpt2AndLlama() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        for (String file : List.of("models/gpt2/gpt2_op17.onnx", "models/llama/llama_op17.onnx")) {
            HookedModel m = HookedModel.load(dir.get().resolve(file));
            for (MethodSpec spec : List.of(new MethodSpec.Prompt("prompt_tuning", 4, "random", null, 0),
                    new MethodSpec.Prompt("p_tuning", 4, "random", null, 16),
                    new MethodSpec.Prompt("prefix_tuning", 4, "random", null, 0, false),
                    new MethodSpec.Prompt("prefix_tuning", 4, "random", null, 16, true))) {
                CausalLanguageModel lm = CausalLanguageModel.create(m, new CausalLanguageModel.Config(spec), 1);
                List<CausalLanguageModel.TokenExample> data = sequences(8, new Random(2));
                double before = lm.loss(data);
                lm.train(data, new TrainingArguments(30, 8, 1e-1, 0, 0.1, 1, 5, 0, 0, "adamw", 16),
                        new PrintStream(new ByteArrayOutputStream()));
                double after = lm.loss(data);
                assertTrue(after < before * 0.8, file + " " + spec + ": loss " + before + " -> " + after);
            }
        }
    }

    /** Trained, saved, reloaded: the same loss; a causal LM checkpoint is not a classifier's, nor the other way. */
    @Test
    void aTrainedLanguageModelSavesAndReloads(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws Exception {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        HookedModel m = HookedModel.load(dir.get().resolve("models/llama/llama_op17.onnx"));
        List<CausalLanguageModel.TokenExample> data = sequences(8, new Random(2));
        for (MethodSpec spec : List.of(new MethodSpec.Prompt("prefix_tuning", 3, "random", null, 0, false),
                new MethodSpec.Prompt("prompt_tuning", 3, "random", null, 0),
                new MethodSpec.Reft("loreft", List.of("blocks.1.block_output"), 2, "l1", false, "linear", 0))) {
            CausalLanguageModel lm = CausalLanguageModel.create(m, new CausalLanguageModel.Config(spec), 1);
            TrainingArguments args = new TrainingArguments(5, 8, 1e-1, 0, 0.1, 1, 5, 0, 0, "adamw", 16);
            lm.train(data, args, new PrintStream(new ByteArrayOutputStream()));
            java.nio.file.Path ck = tmp.resolve(spec.type());
            try (var w = dev.jreft.checkpoints.Checkpoint.prepare(ck)) {
                ReftCheckpoint.save(w, lm, "llama-fixture", args, java.util.Map.of("loss", lm.loss(data)));
            }
            CausalLanguageModel back = ReftCheckpoint.loadLanguageModel(ck, m);
            assertEquals(lm.loss(data), back.loss(data), 1e-9, spec.type());
            var e = assertThrows(dev.jreft.checkpoints.CheckpointFormatException.class, () -> ReftCheckpoint.load(ck,
                    m));
            assertTrue(e.getMessage().contains("task: found 'causal_lm'") && !e.getMessage().contains("\n"),
                    e.getMessage());
        }
    }

    @Test
    void badExamplesAreRejected() {
        var e = assertThrows(IllegalArgumentException.class, () -> new CausalLanguageModel.TokenExample(new long[] {5}, 1));
        assertTrue(e.getMessage().contains("at least 2 ids"), e.getMessage());
    }
}
