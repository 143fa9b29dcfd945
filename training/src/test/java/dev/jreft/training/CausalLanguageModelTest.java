package dev.jreft.training;

import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.Batch;
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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
            // the positions count from the prompt (2 tokens here), as pyreft's do: f8 is both prompt tokens
            TrainingArguments args = new TrainingArguments(60, 8, 5e-2, 0, 0.1, 1, 5, 0, 0, "adamw", 16);
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

    /**
     * pyreft's use: LoReFT at the last prompt tokens, trained on (prompt, completion) pairs with the loss on the
     * completion, changes what greedy decoding generates; the KV-cache export with the same parameters generates the
     * same tokens as recomputation.
     */
    @Test
    void loreftTrainedOnCompletionsChangesWhatIsGenerated() {
        trainedOnCompletionsGenerates(new CausalLanguageModel.Config("loreft", List.of("blocks.0.block_output",
                "blocks.1.block_output"), 8, "l2", false), 150);
    }

    /** LoRA on GPT-2's fused c_attn: the module edit acts on every pass of the generation, cached or not. */
    @Test
    void loraTrainedOnCompletionsChangesWhatIsGenerated() {
        trainedOnCompletionsGenerates(new CausalLanguageModel.Config(new MethodSpec.Lora("lora", List.of("c_attn"), 8,
                16, 0, false)), 150);
    }

    private static void trainedOnCompletionsGenerates(CausalLanguageModel.Config config, int epochs) {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        HookedModel m = HookedModel.load(dir.get().resolve("models/gpt2/gpt2_op17.onnx"));
        CausalLanguageModel lm = CausalLanguageModel.create(m, config, 3);
        long[] completion = {17, 42, 42, 42};
        Random r = new Random(4);
        List<CausalLanguageModel.TokenExample> data = new ArrayList<>();
        long[][] prompts = new long[4][5];
        for (int i = 0; i < prompts.length; i++) {
            long[] ids = new long[prompts[i].length + completion.length];
            for (int t = 0; t < prompts[i].length; t++) {
                ids[t] = prompts[i][t] = 1 + r.nextInt(100);
            }
            System.arraycopy(completion, 0, ids, prompts[i].length, completion.length);
            data.add(new CausalLanguageModel.TokenExample(ids, prompts[i].length));
        }
        long[][] ones = new long[prompts.length][prompts[0].length];
        for (long[] row : ones) {
            java.util.Arrays.fill(row, 1);
        }
        Batch batch = Batch.of(prompts, ones);
        var settings = dev.jreft.interventions.generation.Generator.Settings.greedy(completion.length);
        var on = dev.jreft.interventions.generation.InterveneOn.PROMPT;
        long[][] before = lm.generate(batch, on, settings, null).tokens();
        lm.train(data, new TrainingArguments(epochs, 4, 5e-2, 0, 0.1, 1, 5, 0, 0, "adamw", 16),
                new PrintStream(new ByteArrayOutputStream()));
        long[][] after = lm.generate(batch, on, settings, null).tokens();
        String method = config.method().type();
        for (int i = 0; i < prompts.length; i++) {
            assertFalse(java.util.Arrays.equals(completion, before[i]), method + ": untrained row " + i
                    + " already completes");
            assertArrayEquals(completion, after[i], method + ": trained row " + i + ": "
                    + java.util.Arrays.toString(after[i]));
        }
        HookedModel past = HookedModel.load(dir.get().resolve("models/gpt2/gpt2_past_op17.onnx"));
        CausalLanguageModel cached = CausalLanguageModel.withParameters(past, config, lm.parameters());
        assertArrayEquals(after, cached.generate(batch, on, settings, null).tokens(), method + " with the KV cache");
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

    /**
     * A with-past export trains like its no-past twin (its past inputs get the empty past of a prompt pass), so its
     * checkpoint carries the with-past export's fingerprint and generates with the KV cache from that checkpoint.
     */
    @Test
    void aWithPastExportTrainsLikeItsTwinAndGeneratesFromItsCheckpoint(@org.junit.jupiter.api.io.TempDir
                                                                        java.nio.file.Path tmp) throws Exception {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        for (String family : List.of("gpt2", "llama")) {
            HookedModel plain = HookedModel.load(dir.get().resolve("models/" + family + "/" + family + "_op17.onnx"));
            HookedModel past = HookedModel.load(dir.get().resolve("models/" + family + "/" + family
                    + "_past_op17.onnx"));
            for (MethodSpec spec : List.of(new MethodSpec.Reft("loreft", List.of("blocks.1.block_output"), 2, "l1",
                    false, "linear", 0), new MethodSpec.Lora("lora", List.of(family.equals("gpt2") ? "c_attn"
                    : "q_proj"), 4, 8, 0, false))) {
                List<CausalLanguageModel.TokenExample> data = sequences(8, new Random(2));
                TrainingArguments args = new TrainingArguments(3, 4, 5e-2, 0, 0.1, 1, 5, 0, 0, "adamw", 16);
                CausalLanguageModel a = CausalLanguageModel.create(plain, new CausalLanguageModel.Config(spec), 1);
                CausalLanguageModel b = CausalLanguageModel.create(past, new CausalLanguageModel.Config(spec), 1);
                a.train(data, args, new PrintStream(new ByteArrayOutputStream()));
                b.train(data, args, new PrintStream(new ByteArrayOutputStream()));
                String what = family + " " + spec.type();
                assertEquals(a.loss(data), b.loss(data), 1e-4, what);
                a.parameters().forEach((k, v) -> assertTrue(v.sub(b.parameters().get(k)).amaxNumber().doubleValue()
                        < 1e-4, what + " " + k));
                java.nio.file.Path ck = tmp.resolve(family + "-" + spec.type());
                try (var w = dev.jreft.checkpoints.Checkpoint.prepare(ck)) {
                    ReftCheckpoint.save(w, b, family + "-past", args, java.util.Map.of());
                }
                CausalLanguageModel back = ReftCheckpoint.loadLanguageModel(ck, past);
                Batch prompts = Batch.of(new long[][] {{5, 6, 7}, {9, 10, 11}}, new long[][] {{1, 1, 1}, {1, 1, 1}});
                var settings = dev.jreft.interventions.generation.Generator.Settings.greedy(4);
                var on = dev.jreft.interventions.generation.InterveneOn.PROMPT;
                assertArrayEquals(a.generate(prompts, on, settings, null).tokens(),
                        back.generate(prompts, on, settings, null).tokens(), what);
            }
        }
    }

    @Test
    void badExamplesAreRejected() {
        var e = assertThrows(IllegalArgumentException.class, () -> new CausalLanguageModel.TokenExample(new long[] {5}, 1));
        assertTrue(e.getMessage().contains("at least 2 ids"), e.getMessage());
    }
}
