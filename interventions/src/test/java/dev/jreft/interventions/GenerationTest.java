package dev.jreft.interventions;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.generation.Generator;
import dev.jreft.interventions.generation.InterveneOn;
import dev.jreft.interventions.generation.Sampling;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Greedy and sampled decoding on the fixture exports, with and without a KV cache and interventions. */
class GenerationTest {
    private static Path fixtures;

    @BeforeAll
    static void find() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        fixtures = dir.get();
    }

    private static JsonNode read(Path p) throws IOException {
        return new ObjectMapper().readTree(p.toFile());
    }

    private static INDArray npy(JsonNode relative) {
        return Npy.read(fixtures.resolve(relative.asText()));
    }

    /** A generation case: its prompts, sites and the choice of tokens they act on. */
    private record Case(Batch prompts, List<InterventionSite> sites, InterveneOn on, JsonNode json) {
    }

    private static Case load(String name) throws IOException {
        JsonNode c = read(fixtures.resolve("cases/" + name + "/case.json"));
        Batch prompts = new Batch(Map.of(Batch.INPUT_IDS, npy(c.get("inputs").get("input_ids")),
                Batch.ATTENTION_MASK, npy(c.get("inputs").get("attention_mask"))));
        JsonNode iv = c.get("generation").get("intervene");
        List<InterventionSite> sites = new ArrayList<>();
        InterveneOn on = InterveneOn.PROMPT;
        if (iv != null && !iv.isNull()) {
            Map<String, INDArray> params = new LinkedHashMap<>();
            c.get("params").fields().forEachRemaining(e -> params.put(e.getKey(), npy(e.getValue())));
            Integer rank = params.containsKey("R") ? Integer.valueOf((int) params.get("R").size(0)) : null;
            Intervention intervention = Interventions.create(iv.get("intervention").asText(),
                    new Interventions.Options(rank, null));
            int[][] at = new int[iv.get("prompt_positions").size()][];
            for (int r = 0; r < at.length; r++) {
                JsonNode row = iv.get("prompt_positions").get(r);
                at[r] = new int[row.size()];
                for (int j = 0; j < row.size(); j++) {
                    at[r][j] = row.get(j).asInt();
                }
            }
            sites.add(InterventionSite.at(iv.get("hook").asText(), intervention).positions(at).params(params).build());
            on = iv.get("decode_steps").asBoolean() ? InterveneOn.EVERY : InterveneOn.PROMPT;
        }
        return new Case(prompts, sites, on, c);
    }

    private static Generator generator(String file) {
        return new Generator(new IntervenableModel(HookedModel.load(fixtures.resolve(file))));
    }

    @ParameterizedTest
    @CsvSource({"gpt2_generate_none", "gpt2_generate_loreft_prompt", "gpt2_generate_addition_every_token",
            "llama_generate_none"})
    void fixtureGenerationsWithTheKvCache(String name) throws IOException {
        Case c = load(name);
        Generator g = generator(c.json().get("model_file").asText());
        assertTrue(g.usesCache());
        int n = c.json().get("generation").get("new_tokens").asInt();
        Generator.Generation out = g.generate(c.prompts(), c.sites(), c.on(), Generator.Settings.greedy(n));
        INDArray expected = npy(c.json().get("expected_output").get("tokens"));
        for (int r = 0; r < out.tokens().length; r++) {
            for (int k = 0; k < n; k++) {
                assertEquals(expected.getLong(r, k), out.tokens()[r][k], name + " row " + r + " token " + k);
            }
        }
        INDArray logits = npy(c.json().get("expected_output").get("step_logits"));
        double err = out.stepLogits().sub(logits).amaxNumber().doubleValue();
        assertTrue(err < 1e-4, name + ": step logits differ by " + err);
    }

    /**
     * The greedy sequence loss and its gradient through every step (the cached keys and values included), from the
     * teacher-forced replay on the with-past export with an empty past.
     */
    @ParameterizedTest
    @CsvSource({"gpt2_generate_loreft_prompt", "gpt2_generate_addition_every_token"})
    void sequenceLossAndGradientsThroughTheGeneration(String name) throws IOException {
        Case c = load(name);
        IntervenableModel im = new IntervenableModel(HookedModel.load(fixtures.resolve(c.json().get("model_file")
                .asText())));
        Generator g = new Generator(im);
        INDArray expected = npy(c.json().get("expected_output").get("tokens"));
        long[][] tokens = new long[(int) expected.size(0)][(int) expected.size(1)];
        for (int r = 0; r < tokens.length; r++) {
            for (int k = 0; k < tokens[r].length; k++) {
                tokens[r][k] = expected.getLong(r, k);
            }
        }
        Generator.Replay replay = g.replay(c.prompts(), c.sites(), c.on(), tokens);
        IntervenableModel.Gradients grads = im.gradients(replay.batch(), replay.sites(), null,
                graph -> dev.jreft.hooks.autodiff.LossGraphs.tokenCrossEntropy(graph, "logits"),
                Map.of(dev.jreft.hooks.autodiff.LossGraphs.WEIGHTS, replay.weights(),
                        dev.jreft.hooks.autodiff.LossGraphs.TARGETS, replay.targets()));
        assertEquals(c.json().get("expected_loss").asDouble(), grads.loss(), 1e-4, "greedy sequence loss");
        for (var e : (Iterable<Map.Entry<String, JsonNode>>) () -> c.json().get("expected_grads").fields()) {
            INDArray want = npy(e.getValue());
            INDArray got = grads.perSite().get(0).get(e.getKey());
            double err = got.sub(want).amaxNumber().doubleValue();
            assertTrue(err < 1e-4 + 1e-3 * want.amaxNumber().doubleValue(), name + " d/d" + e.getKey() + ": " + err);
        }
    }

    /**
     * The GPT-2 built in Java from the export's Hugging Face-named weights, with past inputs, generates the fixtures'
     * tokens and step logits, interventions included.
     */
    @ParameterizedTest
    @CsvSource({"gpt2_generate_none", "gpt2_generate_loreft_prompt", "gpt2_generate_addition_every_token"})
    void theGraphBuiltFromWeightsGeneratesAsTheExport(String name) throws IOException {
        Case c = load(name);
        Generator g = builtGpt2(true, false);
        assertTrue(g.usesCache());
        var out = g.generate(c.prompts(), c.sites(), c.on(), Generator.Settings.greedy(8));
        INDArray expected = npy(c.json().get("expected_output").get("tokens"));
        for (int r = 0; r < out.tokens().length; r++) {
            for (int k = 0; k < 8; k++) {
                assertEquals(expected.getLong(r, k), out.tokens()[r][k], name + " row " + r + " token " + k);
            }
        }
        double err = out.stepLogits().sub(npy(c.json().get("expected_output").get("step_logits"))).amaxNumber()
                .doubleValue();
        assertTrue(err < 1e-4, name + ": " + err);
    }

    /** A generator on the GPT-2 built in Java from the fixture export's weights. */
    private static Generator builtGpt2(boolean past, boolean positionIds) {
        var export = dev.jreft.hooks.graph.OnnxGraph.load(fixtures.resolve("models/gpt2/gpt2_past_op17.onnx"));
        Map<String, INDArray> weights = new LinkedHashMap<>();
        for (var t : export.initializers()) {
            if (t.getName().startsWith("transformer.")) {
                weights.put(t.getName(), org.nd4j.linalg.factory.Nd4j.create(export.floats(t.getName()),
                        t.getDimsList().stream().mapToLong(Long::longValue).toArray(), 'c'));
            }
        }
        var built = dev.jreft.hooks.graph.Gpt2Graph.build(new dev.jreft.hooks.graph.Gpt2Graph.Config(2, 32, 4, 101,
                64), weights, past, positionIds);
        return new Generator(new IntervenableModel(new HookedModel(built, null,
                dev.jreft.hooks.runtime.OrtRuntime.shared())));
    }

    /** Recomputing every step on the export without past gives what the KV cache gives, interventions included. */
    @ParameterizedTest
    @CsvSource({"gpt2_generate_none, models/gpt2/gpt2_op17.onnx",
            "gpt2_generate_loreft_prompt, models/gpt2/gpt2_op17.onnx",
            "gpt2_generate_addition_every_token, models/gpt2/gpt2_op17.onnx",
            "llama_generate_none, models/llama/llama_op17.onnx"})
    void recomputationMatchesTheCache(String name, String noPast) throws IOException {
        Case c = load(name);
        Generator cached = generator(c.json().get("model_file").asText());
        Generator recomputed = generator(noPast);
        assertFalse(recomputed.usesCache());
        var a = cached.generate(c.prompts(), c.sites(), c.on(), Generator.Settings.greedy(8));
        var b = recomputed.generate(c.prompts(), c.sites(), c.on(), Generator.Settings.greedy(8));
        assertArrayEquals(a.tokens(), b.tokens());
        assertTrue(a.stepLogits().sub(b.stepLogits()).amaxNumber().doubleValue() < 1e-4);
    }

    /** Each choice of tokens acts where it says: the prompt pass alone, the generated tokens alone, or both. */
    @Test
    void interveneOnPromptGeneratedOrEvery() throws IOException {
        Case c = load("gpt2_generate_addition_every_token");
        Generator g = generator(c.json().get("model_file").asText());
        var plain = g.generate(c.prompts(), List.of(), InterveneOn.PROMPT, Generator.Settings.greedy(8));
        var prompt = g.generate(c.prompts(), c.sites(), InterveneOn.PROMPT, Generator.Settings.greedy(8));
        var generated = g.generate(c.prompts(), c.sites(), InterveneOn.GENERATED, Generator.Settings.greedy(8));
        var every = g.generate(c.prompts(), c.sites(), InterveneOn.EVERY, Generator.Settings.greedy(8));
        // step 0 reads the prompt pass: GENERATED leaves it alone, PROMPT and EVERY change it alike
        assertTrue(step(generated, 0).equalsWithEps(step(plain, 0), 1e-6));
        assertFalse(step(prompt, 0).equalsWithEps(step(plain, 0), 1e-3));
        assertTrue(step(every, 0).equalsWithEps(step(prompt, 0), 1e-6));
        // later steps: GENERATED departs from plain, EVERY from PROMPT
        assertFalse(step(generated, 1).equalsWithEps(step(plain, 1), 1e-3));
        assertFalse(step(every, 1).equalsWithEps(step(prompt, 1), 1e-3));
    }

    private static INDArray step(Generator.Generation g, int k) {
        return g.stepLogits().get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
                org.nd4j.linalg.indexing.NDArrayIndex.point(k), org.nd4j.linalg.indexing.NDArrayIndex.all());
    }

    /**
     * Prompts of unequal length, left-padded, on exports that take position_ids (Llama's; GPT-2 built with them, whose
     * absolute positions a pad count would shift): each row generates what it generates alone, with and without the
     * KV cache, and a LoReFT at each row's last real token acts there as it does on the row alone.
     */
    @Test
    void leftPaddedPromptsGenerateWhatEachGeneratesAlone() throws IOException {
        long[][] rows = {{11, 12, 13, 14, 15}, {21, 22}, {31, 32, 33}};
        Batch padded = Generator.leftPadded(Batch.of(new long[][] {{11, 12, 13, 14, 15}, {21, 22, 0, 0, 0},
                {31, 32, 33, 0, 0}}, new long[][] {{1, 1, 1, 1, 1}, {1, 1, 0, 0, 0}, {1, 1, 1, 0, 0}}));
        assertArrayEquals(new long[] {0, 0, 0, 21, 22}, padded.inputs().get(Batch.INPUT_IDS).getRow(1).toLongVector());
        assertArrayEquals(new long[] {0, 0, 0, 1, 1}, padded.attentionMask().getRow(1).toLongVector());
        Map<String, Generator> generators = new LinkedHashMap<>();
        generators.put("llama", generator("models/llama/llama_past_op17.onnx"));
        generators.put("llama without past", generator("models/llama/llama_op17.onnx"));
        generators.put("gpt2 built with position_ids", builtGpt2(true, true));
        generators.put("gpt2 built with position_ids, without past", builtGpt2(false, true));
        for (var e : generators.entrySet()) {
            String file = e.getKey();
            Generator g = e.getValue();
            for (boolean withSite : new boolean[] {false, true}) {
                var batch = g.generate(padded, withSite ? List.of(lastToken(padded)) : List.of(), InterveneOn.PROMPT,
                        Generator.Settings.greedy(6));
                for (int r = 0; r < rows.length; r++) {
                    long[] ones = new long[rows[r].length];
                    java.util.Arrays.fill(ones, 1);
                    Batch alone = Batch.of(new long[][] {rows[r]}, new long[][] {ones});
                    var one = g.generate(alone, withSite ? List.of(lastToken(alone)) : List.of(), InterveneOn.PROMPT,
                            Generator.Settings.greedy(6));
                    String what = file + " row " + r + (withSite ? " with LoReFT" : "");
                    assertArrayEquals(one.tokens()[0], batch.tokens()[r], what);
                    INDArray a = batch.stepLogits().slice(r);
                    INDArray b = one.stepLogits().slice(0);
                    assertTrue(a.sub(b).amaxNumber().doubleValue() < 1e-4, what);
                }
            }
        }
    }

    /** A seeded rank-2 LoReFT at each row's last real token of block 1's output. */
    private static InterventionSite lastToken(Batch prompts) {
        int[][] at = new int[prompts.size()][];
        for (int r = 0; r < at.length; r++) {
            at[r] = new int[] {prompts.lastReal(r)};
        }
        Intervention loreft = Interventions.create("loreft", new Interventions.Options(2, null));
        return InterventionSite.at("blocks.1.block_output", loreft).positions(at)
                .params(ModuleEditTest.fresh(loreft.parameters(32), 7)).build();
    }

    @Test
    void samplingIsSeededAndTopKOfOneIsGreedy() throws IOException {
        Case c = load("gpt2_generate_none");
        Generator g = generator(c.json().get("model_file").asText());
        var greedy = g.generate(c.prompts(), List.of(), InterveneOn.PROMPT, Generator.Settings.greedy(8));
        var top1 = g.generate(c.prompts(), List.of(), InterveneOn.PROMPT, new Generator.Settings(8,
                Sampling.sample(0.7, 1, 1.0, 5), Set.of()));
        assertArrayEquals(greedy.tokens(), top1.tokens());
        var hot1 = g.generate(c.prompts(), List.of(), InterveneOn.PROMPT, new Generator.Settings(8,
                Sampling.sample(5.0, 0, 1.0, 11), Set.of()));
        var hot2 = g.generate(c.prompts(), List.of(), InterveneOn.PROMPT, new Generator.Settings(8,
                Sampling.sample(5.0, 0, 1.0, 11), Set.of()));
        assertArrayEquals(hot1.tokens(), hot2.tokens(), "same seed, same tokens");
        assertFalse(java.util.Arrays.deepEquals(hot1.tokens(), greedy.tokens()), "a hot sample departs from greedy");
        // a stop token ends its row: the row's length counts it, later slots repeat it
        long stop = greedy.tokens()[0][2];
        var stopped = g.generate(c.prompts(), List.of(), InterveneOn.PROMPT, new Generator.Settings(8,
                Sampling.greedy(), Set.of(stop)));
        int first = 0;
        while (greedy.tokens()[0][first] != stop) {
            first++;
        }
        assertEquals(first + 1, stopped.lengths()[0]);
        assertEquals(stop, stopped.tokens()[0][stopped.steps() - 1]);
    }

    @Test
    void badSettingsAndModelsAreOneLineErrors() throws IOException {
        Case c = load("gpt2_generate_none");
        Generator g = generator(c.json().get("model_file").asText());
        var temperature = assertThrows(ConfigException.class, () -> Sampling.sample(0, 0, 1, 1));
        assertTrue(temperature.getMessage().startsWith("temperature: found 0.0; valid: a number > 0"),
                temperature.getMessage());
        var topP = assertThrows(ConfigException.class, () -> Sampling.sample(1, 0, 1.5, 1));
        assertTrue(topP.getMessage().startsWith("top_p: found 1.5; valid: a number in (0, 1]"), topP.getMessage());
        var stop = assertThrows(ConfigException.class, () -> g.generate(c.prompts(), List.of(), InterveneOn.PROMPT,
                new Generator.Settings(4, Sampling.greedy(), Set.of(101L))));
        assertTrue(stop.getMessage().startsWith("stop_tokens: found 101; valid: token ids in 0..100"),
                stop.getMessage());
        var tooLong = assertThrows(ConfigException.class, () -> g.generate(c.prompts(), List.of(), InterveneOn.PROMPT,
                Generator.Settings.greedy(10_000)));
        assertTrue(tooLong.getMessage().startsWith("max_new_tokens: found 10000; valid: at most"), tooLong.getMessage());
        Batch right = Batch.of(new long[][] {{5, 6, 7}, {5, 6, 0}}, new long[][] {{1, 1, 1}, {1, 1, 0}});
        var pad = assertThrows(ConfigException.class, () -> g.generate(right, List.of(), InterveneOn.PROMPT,
                Generator.Settings.greedy(2)));
        assertTrue(pad.getMessage().startsWith("prompts: found row 1 padded after its first token; valid: left"
                + " padding"), pad.getMessage());
        // GPT-2's export derives positions itself: left padding would shift them
        Batch left = Generator.leftPadded(right);
        var positions = assertThrows(ConfigException.class, () -> g.generate(left, List.of(), InterveneOn.PROMPT,
                Generator.Settings.greedy(2)));
        assertTrue(positions.getMessage().startsWith("prompts: found prompts of unequal length (left-padded)")
                && positions.getMessage().contains("takes no position_ids"), positions.getMessage());
        var encoder = assertThrows(ConfigException.class, () -> generator("models/bert/bert_op14.onnx"));
        assertTrue(encoder.getMessage().contains("cannot generate"), encoder.getMessage());
    }
}
