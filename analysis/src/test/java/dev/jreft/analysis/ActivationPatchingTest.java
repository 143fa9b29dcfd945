package dev.jreft.analysis;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.statics.VanillaInterchange;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Activation and attribution patching on MiniLM, one pair of sentences differing in one word. */
class ActivationPatchingTest {
    static HookedModel model;
    static Batch base;
    static Batch source;
    static List<String> blocks = new ArrayList<>();

    @BeforeAll
    static void load() {
        model = HookedModel.minilm();
        base = model.tokenize(List.of("The movie was wonderful."));
        source = model.tokenize(List.of("The movie was terrible."));
        for (int l = 0; l < 6; l++) {
            blocks.add("blocks." + l + ".block_output");
        }
    }

    @Test
    void activationPatchingFindsTheDifferingTokenAndCompilesOneGraphPerHook() {
        var metric = ActivationPatching.Metric.embeddingDirection(model, base, source);
        ActivationPatching.Grid grid = ActivationPatching.activation(model, base, source, blocks, metric);
        assertEquals(7, grid.positions());
        assertTrue(grid.sourceMetric() > grid.baseMetric(), "the metric points from base to source");
        int differing = 4; // [CLS] the movie was wonderful . [SEP]
        for (int t = 0; t < 7; t++) {
            if (t != differing) {
                assertTrue(grid.effect()[0][differing] > grid.effect()[0][t] + 0.5, "layer 0, token " + t);
            }
        }
        assertTrue(grid.effect()[0][differing] > 0.9, "layer 0 at the differing token: " + grid.effect()[0][differing]);
        // one graph for the grid (positions fed per row) and the one that caches the source's hooks
        assertTrue(grid.graphsCompiled() <= 2, grid.graphsCompiled() + " graphs for " + blocks.size() + " hooks");
        // cells batched 16 to a run, every hook's site in each: the same as patching one cell alone
        IntervenableModel im = new IntervenableModel(model);
        ActivationCache src = model.runWithCache(source, blocks);
        for (int[] cell : new int[][] {{0, 4}, {2, 6}, {5, 0}, {3, 4}}) {
            int[][] at = {{cell[1]}};
            double m = metric.of(im.run(base, List.of(InterventionSite.at(blocks.get(cell[0]), new VanillaInterchange())
                    .positions(at).source(Source.cached(src.get(blocks.get(cell[0]))), at).build())).outputs());
            assertEquals((m - grid.baseMetric()) / (grid.sourceMetric() - grid.baseMetric()),
                    grid.effect()[cell[0]][cell[1]], 1e-5, "cell " + java.util.Arrays.toString(cell));
        }
    }

    /**
     * The metric is linear in the last block's output (MiniLM's last hidden state), so there attribution patching is
     * exact; elsewhere it is an estimate that follows activation patching.
     */
    @Test
    void attributionPatchingIsExactWhereTheMetricIsLinearAndCorrelatesElsewhere() {
        var metric = ActivationPatching.Metric.embeddingDirection(model, base, source);
        ActivationPatching.Grid act = ActivationPatching.activation(model, base, source, blocks, metric);
        ActivationPatching.Grid attr = ActivationPatching.attribution(model, base, source, blocks, metric);
        for (int t = 0; t < 7; t++) {
            assertEquals(act.effect()[5][t], attr.effect()[5][t], 1e-4, "blocks.5 at token " + t);
        }
        double r = ActivationPatching.correlation(act, attr);
        assertTrue(r > 0.5, "correlation " + r);
    }

    /**
     * Per-head patching: a cell equals patching the whole vector with a hybrid source (the base with that head's slice
     * from the source), and the per-head attribution adds up to the per-position one.
     */
    @Test
    void headPatchingPatchesOneHeadsSliceAndItsAttributionAddsUp() {
        var metric = ActivationPatching.Metric.embeddingDirection(model, base, source);
        List<String> merged = List.of("blocks.1.attention_value_output", "blocks.4.attention_value_output");
        ActivationPatching.Grid act = ActivationPatching.activationByHead(model, base, source, merged, metric);
        assertEquals(ActivationPatching.Across.HEAD, act.across());
        assertEquals(12, act.positions());
        assertTrue(act.graphsCompiled() <= 2, act.graphsCompiled() + " graphs");

        ActivationCache b = model.runWithCache(base, merged);
        ActivationCache s = model.runWithCache(source, merged);
        int head = 7;
        INDArray hybrid = b.get(merged.get(1)).dup();
        var slice = new org.nd4j.linalg.indexing.INDArrayIndex[] {NDArrayIndex.all(), NDArrayIndex.all(),
                NDArrayIndex.interval(32 * head, 32 * (head + 1))};
        hybrid.get(slice).assign(s.get(merged.get(1)).get(slice));
        int[][] every = {java.util.stream.IntStream.range(0, 7).toArray()};
        double m = metric.of(new IntervenableModel(model).run(base, List.of(InterventionSite.at(merged.get(1),
                new VanillaInterchange()).positions(every).source(Source.cached(hybrid), every).build())).outputs());
        assertEquals((m - act.baseMetric()) / (act.sourceMetric() - act.baseMetric()), act.effect()[1][head], 1e-5);

        ActivationPatching.Grid attrHeads = ActivationPatching.attributionByHead(model, base, source, merged, metric);
        ActivationPatching.Grid attrPositions = ActivationPatching.attribution(model, base, source, merged, metric);
        for (int h = 0; h < 2; h++) {
            assertEquals(java.util.Arrays.stream(attrPositions.effect()[h]).sum(),
                    java.util.Arrays.stream(attrHeads.effect()[h]).sum(), 1e-6, merged.get(h));
        }
        var notHeads = assertThrows(ConfigException.class, () -> ActivationPatching.activationByHead(model, base,
                source, List.of("blocks.0.block_output"), metric));
        assertTrue(notHeads.getMessage().startsWith("hooks[0]: found 'blocks.0.block_output of shape"),
                notHeads.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ActivationPatching.correlation(act, attrPositions));
    }

    @Test
    void pairsOfDifferentLengthsAndHooksWithoutPositionsAreOneLineErrors() {
        Batch longer = model.tokenize(List.of("The movie was not wonderful."));
        var metric = ActivationPatching.Metric.embeddingDirection(model, base, source);
        var e = assertThrows(ConfigException.class, () -> ActivationPatching.activation(model, base, longer, blocks,
                metric));
        assertTrue(e.getMessage().startsWith("source: found '8 tokens against the base's 7'"), e.getMessage());
        var h = assertThrows(ConfigException.class, () -> ActivationPatching.attribution(model, base, source,
                List.of("blocks.0.attention_weight"), metric));
        assertTrue(h.getMessage().startsWith("hooks[0]: found 'blocks.0.attention_weight of shape"), h.getMessage());
        assertThrows(RuntimeException.class, () -> ActivationPatching.activation(model, base, source,
                List.of("blocks.9.block_output"), metric));
    }
}
