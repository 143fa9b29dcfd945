package dev.jreft.interventions;

import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.prompt.PrefixTuning;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix tuning on causal exports without past inputs: the prefix spliced in front of every layer's keys and values,
 * the causal mask and positions moved as a past of P moves them, gives what the same model's export with past inputs
 * gives when the prefix is its past (outputs and gradients), on GPT-2 (mask sliced by the key length, learned
 * positions) and Llama (mask from cache positions, rotary positions, grouped key / value heads).
 */
class CausalPrefixTest {
    private static Path fixtures;

    @BeforeAll
    static void load() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        fixtures = dir.get();
    }

    private static Batch batch(String dir, String... names) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        for (String n : names) {
            m.put(n, Npy.read(fixtures.resolve(dir).resolve(n + ".npy")));
        }
        return new Batch(m);
    }

    private static SequenceSite randomPrefix(HookedModel model, int length, long seed) {
        PrefixTuning prefix = new PrefixTuning(length, 0);
        Random r = new Random(seed);
        Map<String, INDArray> params = new LinkedHashMap<>();
        for (var p : prefix.parameters(SequenceShape.of(model), () -> null)) {
            params.put(p.name(), p.init().draw(p.shape(), r));
        }
        return new SequenceSite(prefix, params);
    }

    private static String squaredLogits(dev.jreft.hooks.graph.OnnxGraph graph) {
        String[] loss = new String[1];
        graph.append("causal-prefix-test-loss", b -> loss[0] = b.op("ReduceSum", List.of(b.op("Mul",
                List.of("logits", "logits"))), Attr.i("keepdims", 0)));
        return loss[0];
    }

    private static double maxRelative(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue() / Math.max(1e-12, b.amaxNumber().doubleValue());
    }

    private static void sameAsWithPast(String noPast, String withPast, Batch base) {
        HookedModel plain = HookedModel.load(fixtures.resolve(noPast));
        HookedModel past = HookedModel.load(fixtures.resolve(withPast));
        SequenceSite site = randomPrefix(plain, 3, 11);
        IntervenableModel a = new IntervenableModel(plain);
        IntervenableModel b = new IntervenableModel(past);
        INDArray spliced = a.run(base, List.of(site), List.of(), List.of()).output("logits");
        INDArray reference = b.run(base, List.of(site), List.of(), List.of()).output("logits");
        INDArray without = plain.run(base).get("logits");
        assertArrayEquals(without.shape(), spliced.shape());
        assertTrue(spliced.sub(without).amaxNumber().doubleValue() > 1e-2, "the tokens attend to the prefix");
        double out = spliced.sub(reference).amaxNumber().doubleValue();
        assertTrue(out < 1e-4, noPast + ": logits differ from the with-past export's by " + out);
        var ga = a.gradients(base, List.of(site), List.of(), null, CausalPrefixTest::squaredLogits, Map.of(),
                List.of()).perEdit().get(0);
        var gb = b.gradients(base, List.of(site), List.of(), null, CausalPrefixTest::squaredLogits, Map.of(),
                List.of()).perEdit().get(0);
        for (String name : site.params().keySet()) {
            double rel = maxRelative(ga.get(name), gb.get(name));
            assertTrue(gb.get(name).amaxNumber().doubleValue() > 0 && rel < 1e-3, noPast + " d/d" + name
                    + ": relative error " + rel);
        }
    }

    @Test
    void gpt2WithoutPastEqualsTheExportWithPast() {
        sameAsWithPast("models/gpt2/gpt2_op17.onnx", "models/gpt2/gpt2_past_op17.onnx", batch("models/gpt2/inputs",
                "input_ids", "attention_mask"));
    }

    @Test
    void llamaWithoutPastEqualsTheExportWithPast() {
        sameAsWithPast("models/llama/llama_op17.onnx", "models/llama/llama_past_op17.onnx", batch(
                "models/llama/inputs", "input_ids", "attention_mask", "position_ids"));
    }

    /** The fixture's GPT-2 prefix case (run by the fixtures on the with-past export) on the export without past. */
    @Test
    void gpt2WithoutPastReproducesThePrefixFixture() {
        HookedModel plain = HookedModel.load(fixtures.resolve("models/gpt2/gpt2_op17.onnx"));
        String dir = "cases/gpt2_prefix_tuning/";
        Map<String, INDArray> params = new LinkedHashMap<>();
        for (String n : List.of("past.0.key", "past.0.value", "past.1.key", "past.1.value")) {
            params.put(n, Npy.read(fixtures.resolve(dir + n + ".npy")));
        }
        INDArray logits = new IntervenableModel(plain).run(batch("models/gpt2/inputs", "input_ids",
                "attention_mask"), List.of(new SequenceSite(new PrefixTuning(3, 0), params)), List.of(), List.of())
                .output("logits");
        double err = logits.sub(Npy.read(fixtures.resolve(dir + "expected_logits.npy"))).amaxNumber().doubleValue();
        assertTrue(err < 1e-4, "max abs error " + err);
    }

    /**
     * The prefixes a checkpoint keeps for the fixture's PrefixEncoder are the fixture's {@code expected_past}, and as
     * plain prefixes on the export without past they give the case's logits.
     */
    @Test
    void theKeptPrefixesOfTheProjectionFixtureAreItsPast() {
        HookedModel plain = HookedModel.load(fixtures.resolve("models/gpt2/gpt2_op17.onnx"));
        String dir = "cases/gpt2_prefix_projection/";
        Map<String, INDArray> mlp = new LinkedHashMap<>();
        for (String n : List.of("embedding.weight", "transform.0.weight", "transform.0.bias", "transform.2.weight",
                "transform.2.bias")) {
            mlp.put(n, Npy.read(fixtures.resolve(dir + n + ".npy")));
        }
        Map<String, INDArray> kept = new PrefixTuning(3, 16).prefixes(SequenceShape.of(plain), mlp);
        for (var e : kept.entrySet()) {
            INDArray want = Npy.read(fixtures.resolve(dir + "expected_" + e.getKey() + ".npy"));
            INDArray row0 = want.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 1),
                    org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all(),
                    org.nd4j.linalg.indexing.NDArrayIndex.all());
            assertArrayEquals(row0.shape(), e.getValue().shape(), e.getKey());
            double err = e.getValue().sub(row0).amaxNumber().doubleValue();
            assertTrue(err < 1e-5, e.getKey() + ": " + err);
        }
        INDArray logits = new IntervenableModel(plain).run(batch("models/gpt2/inputs", "input_ids",
                "attention_mask"), List.of(new SequenceSite(new PrefixTuning(3, 0), kept)), List.of(), List.of())
                .output("logits");
        double err = logits.sub(Npy.read(fixtures.resolve(dir + "expected_logits.npy"))).amaxNumber().doubleValue();
        assertTrue(err < 1e-4, "max abs error " + err);
    }
}
