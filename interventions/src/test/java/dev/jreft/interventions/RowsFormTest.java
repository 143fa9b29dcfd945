package dev.jreft.interventions;

import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.interventions.reft.LoReFT;
import dev.jreft.interventions.reft.NoReFT;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rows and every-position forms of a site against the dense form (Where over the whole tensor). */
class RowsFormTest {
    @BeforeAll
    static void load() throws Exception {
        StaticInterventionTest.load();
    }

    /** Σ h ⊙ tanh(h) over last_hidden_state h: every position and feature weighs differently. */
    private static final Function<OnnxGraph, String> LOSS = g -> {
        String[] name = new String[1];
        g.append("rows-test-loss", b -> {
            String y = b.op("Mul", List.of("last_hidden_state", b.op("Tanh", List.of("last_hidden_state"))));
            name[0] = b.op("ReduceSum", List.of(y), dev.jreft.hooks.graph.Attr.i("keepdims", 0));
        });
        return name[0];
    };

    private record Run(INDArray output, IntervenableModel.Gradients gradients) {
    }

    private static Run run(List<InterventionSite> sites, boolean rows) {
        String before = System.getProperty(IntervenableModel.ROWS);
        System.setProperty(IntervenableModel.ROWS, Boolean.toString(rows));
        try {
            IntervenableModel m = new IntervenableModel(StaticInterventionTest.bert);
            return new Run(m.run(StaticInterventionTest.bertBase, sites).output("last_hidden_state"),
                    m.gradients(StaticInterventionTest.bertBase, sites, LOSS, Map.of()));
        } finally {
            if (before == null) {
                System.clearProperty(IntervenableModel.ROWS);
            } else {
                System.setProperty(IntervenableModel.ROWS, before);
            }
        }
    }

    @Test
    void rowsAndDenseGiveTheSameOutputsAndGradients() {
        java.util.Random r = new java.util.Random(3);
        LoReFT loreft = new LoReFT(2);
        NoReFT noreft = new NoReFT(3);
        List<InterventionSite> sites = List.of(
                InterventionSite.at("blocks.0.block_output", loreft).positions(new int[][] {{3, 1}, {0, 2}})
                        .params(ModuleEditTest.fresh(loreft.parameters(32), 4)).build(),
                // unsorted positions, and a subspace that keeps the other features as they were
                InterventionSite.at("blocks.1.block_output", noreft).positions(new int[][] {{5, 2}, {1, 3}})
                        .subspace(0, 3, 7, 30).params(ModuleEditTest.fresh(noreft.parameters(32), 5)).build());
        assertSameAsDense(sites);
    }

    /** An adapter and an IA3 scale at every position and feature take the every-position form: no masks, no Where. */
    @Test
    void everyPositionAndDenseGiveTheSameOutputsAndGradients() {
        var adapter = new dev.jreft.interventions.peft.BottleneckAdapter(4);
        var scale = new dev.jreft.interventions.peft.ElementwiseScale();
        int batch = StaticInterventionTest.bertBase.size();
        int seq = StaticInterventionTest.bertBase.seqLen();
        List<InterventionSite> sites = List.of(
                InterventionSite.at("blocks.0.mlp_output", adapter).everyPosition(batch, seq)
                        .params(random(adapter.parameters(32), 6)).build(),
                InterventionSite.at("blocks.1.block_output", scale).everyPosition(batch, seq)
                        .params(random(scale.parameters(32), 7)).build());
        assertSameAsDense(sites);
    }

    /** Parameters away from their initialisation (a fresh adapter or scale is the identity): uniform in ±0.5. */
    private static Map<String, INDArray> random(List<dev.jreft.interventions.params.Parameter> declared, long seed) {
        java.util.Random r = new java.util.Random(seed);
        Map<String, INDArray> m = new java.util.LinkedHashMap<>();
        for (var p : declared) {
            long n = java.util.Arrays.stream(p.shape()).reduce(1, (a, b) -> a * b);
            float[] v = new float[(int) n];
            for (int i = 0; i < v.length; i++) {
                v[i] = r.nextFloat() - 0.5f;
            }
            m.put(p.name(), Nd4j.create(v, p.shape(), 'c'));
        }
        return m;
    }

    private static void assertSameAsDense(List<InterventionSite> sites) {
        Run rows = run(sites, true);
        Run dense = run(sites, false);
        assertTrue(ModuleEditTest.maxDiff(rows.output(), dense.output()) < 1e-5);
        assertTrue(ModuleEditTest.maxDiff(rows.output(), StaticInterventionTest.bert.run(StaticInterventionTest.bertBase)
                .get("last_hidden_state")) > 1e-3, "the sites changed the output");
        assertEquals(dense.gradients().loss(), rows.gradients().loss(), 1e-4 * Math.abs(dense.gradients().loss()));
        for (int s = 0; s < sites.size(); s++) {
            for (var e : dense.gradients().perSite().get(s).entrySet()) {
                INDArray g = rows.gradients().perSite().get(s).get(e.getKey());
                assertArrayEquals(e.getValue().shape(), g.shape());
                double scale = Math.max(1e-6, e.getValue().amaxNumber().doubleValue());
                assertTrue(ModuleEditTest.maxDiff(g, e.getValue()) < 1e-4 * scale, "site " + s + " " + e.getKey());
                assertTrue(e.getValue().amaxNumber().doubleValue() > 0, "site " + s + " " + e.getKey() + " is zero");
            }
        }
    }

    @Test
    void onlyRowsWithEqualCountsOfDistinctPositionsTakeTheRowsForm() {
        assertArrayEquals(new int[][] {{1, 3}, {0, 2}}, IntervenableModel.uniformPositions(new int[][] {{3, 1, 3},
                {2, 0}}));
        assertNull(IntervenableModel.uniformPositions(new int[][] {{1, 2}, {0}}));
        assertNull(IntervenableModel.uniformPositions(new int[][] {{}, {}}));
        assertArrayEquals(new long[] {1, 3, 6, 8}, IntervenableModel.flatRows(new int[][] {{1, 3}, {0, 2}}, 6)
                .toLongVector());
        assertEquals(DataType.LONG, IntervenableModel.flatRows(new int[][] {{1}}, 4).dataType());
    }

    @Test
    void onlyRowsThatSelectEveryPositionTakeTheEveryPositionForm() {
        assertTrue(IntervenableModel.everyPosition(new int[][] {{2, 0, 1}, {0, 1, 2, 2}}, 3));
        assertTrue(!IntervenableModel.everyPosition(new int[][] {{0, 1, 2}, {0, 2}}, 3));
        assertTrue(!IntervenableModel.everyPosition(new int[][] {}, 3));
    }
}
