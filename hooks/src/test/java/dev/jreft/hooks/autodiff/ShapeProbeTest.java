package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The probe's slices find every tensor's shape, as one run that returns them all does. */
class ShapeProbeTest {
    @Test
    void slicedProbeMatchesTheShapesOfOneFullRun() {
        HookedModel model = HookedModel.minilm();
        long[][] ids = new long[3][7];
        long[][] mask = new long[3][7];
        for (int b = 0; b < 3; b++) {
            for (int t = 0; t < 7; t++) {
                ids[b][t] = 1000 + 13 * t + b;
                mask[b][t] = 1;
            }
        }
        Batch batch = model.complete(Batch.of(ids, mask));
        Map<String, INDArray> feeds = model.feeds(batch);
        OnnxGraph g = model.graph();
        Map<String, long[]> shapes = ShapeProbe.probe(g, feeds);
        List<String> some = new ArrayList<>();
        List<String> produced = g.producedTensors();
        dev.jreft.hooks.graph.ElemTypes types = new dev.jreft.hooks.graph.ElemTypes(g);
        for (int i = 0; i < produced.size(); i += 37) {
            if (types.of(produced.get(i)) == dev.jreft.hooks.graph.ElemTypes.FLOAT) {
                some.add(produced.get(i));
            }
        }
        for (String t : produced) {
            if (types.of(t) != dev.jreft.hooks.graph.ElemTypes.UNKNOWN) {
                assertNotNull(shapes.get(t), "no shape for " + t);
            }
        }
        OnnxGraph exposed = g.copy();
        some.forEach(t -> exposed.exposeOutput(t, dev.jreft.hooks.graph.ElemTypes.FLOAT));
        Map<String, INDArray> out = new CompiledGraph(exposed, exposed.fingerprint(), OrtRuntime.shared())
                .run(feeds, some);
        assertTrue(some.size() > 5);
        for (String t : some) {
            assertArrayEquals(out.get(t).shape(), shapes.get(t), t);
        }
        assertArrayEquals(new long[] {3, 7, 384}, shapes.get(g.outputNames().get(0)));
    }

    @Test
    void theFrontierCacheKeepsToItsBytes() {
        GraphGradients.FrontierCache c = new GraphGradients.FrontierCache(64, 3 * 4 * 100);
        assertFalse(c.put("once", Map.of("x", Nd4j.zeros(100))), "the caller frees what is not kept");
        assertEquals(null, c.get("once"), "a batch seen once is not kept");
        assertEquals(0, c.held());
        for (int i = 0; i < 5; i++) {
            c.put("k" + i, Map.of("x", Nd4j.zeros(100)));
            assertTrue(c.put("k" + i, Map.of("x", Nd4j.zeros(100)))); // seen again: kept
        }
        assertEquals(3 * 4 * 100, c.held());
        assertEquals(null, c.get("k0"), "the eldest went first");
        assertNotNull(c.get("k4"));
        c.put("huge", Map.of("x", Nd4j.zeros(1000)));
        assertFalse(c.put("huge", Map.of("x", Nd4j.zeros(1000))));
        assertEquals(null, c.get("huge"), "an entry above the budget is not kept");
        assertEquals(3 * 4 * 100, c.held());
    }
}
