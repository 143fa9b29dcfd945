package dev.jreft.hooks;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jreft.hooks.graph.Gpt2Graph;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPT-2 built from Hugging Face-named weights is the fixtures' torch export on the same weights: the same hooks
 * and linear modules, the same logits and hook values (PyTorch's references).
 */
class Gpt2GraphTest {
    static Map<String, INDArray> fixtureWeights(OnnxGraph export) {
        Map<String, INDArray> w = new LinkedHashMap<>();
        for (var t : export.initializers()) {
            if (t.getName().startsWith("transformer.")) {
                long[] dims = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
                w.put(t.getName(), Nd4j.create(export.floats(t.getName()), dims, 'c'));
            }
        }
        return w;
    }

    @Test
    void builtGraphIsTheExportOnItsOwnWeights() {
        OnnxGraph export = OnnxGraph.load(Fixtures.dir().resolve("models/gpt2/gpt2_op17.onnx"));
        JsonNode m = Fixtures.manifest().get("models").get("gpt2");
        var config = new Gpt2Graph.Config(2, 32, 4, 101, 64);
        OnnxGraph built = Gpt2Graph.build(config, fixtureWeights(export), false);
        try (HookedModel ours = new HookedModel(built, null, OrtRuntime.shared());
             HookedModel theirs = new HookedModel(export, null, OrtRuntime.shared())) {
            assertEquals(theirs.hooks().names(), ours.hooks().names());
            assertEquals(theirs.hooks().config(), ours.hooks().config());
            assertEquals(theirs.modules().paths(), ours.modules().paths());
            List<String> hooks = new ArrayList<>();
            m.get("hook_references").fieldNames().forEachRemaining(hooks::add);
            ActivationCache c = ours.runWithCache(Fixtures.inputs("gpt2"), hooks);
            INDArray logits = Fixtures.npy(m.get("outputs").get("logits").asText());
            double err = c.output("logits").sub(logits).amaxNumber().doubleValue();
            assertTrue(err < 1e-4, "logits differ from PyTorch's by " + err);
            INDArray mask = Fixtures.inputs("gpt2").attentionMask();
            for (String h : hooks) {
                INDArray want = Fixtures.npy(m.get("hook_references").get(h).asText());
                INDArray got = c.get(h);
                if (want.rank() != 3) { // attention weights [b, heads, s, s]: every real query row
                    assertTrue(got.sub(want).mul(mask.reshape(mask.size(0), 1, mask.size(1), 1).castTo(got.dataType()))
                            .amaxNumber().doubleValue() < 1e-4, h);
                    continue;
                }
                // padded positions are not compared (the export and PyTorch mask them differently)
                double worst = 0;
                for (int b = 0; b < want.size(0); b++) {
                    for (int t = 0; t < mask.size(1); t++) {
                        if (mask.getLong(b, t) == 0) {
                            continue;
                        }
                        var at = new org.nd4j.linalg.indexing.INDArrayIndex[] {
                            org.nd4j.linalg.indexing.NDArrayIndex.point(b), org.nd4j.linalg.indexing.NDArrayIndex.point(t),
                            org.nd4j.linalg.indexing.NDArrayIndex.all()};
                        worst = Math.max(worst, got.get(at).sub(want.get(at)).amaxNumber().doubleValue());
                    }
                }
                assertTrue(worst < 1e-4, h + " differs by " + worst);
            }
        }
    }
}
