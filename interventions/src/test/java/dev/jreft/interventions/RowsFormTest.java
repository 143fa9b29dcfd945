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

/** The rows form of a site (gather the selected rows, edit them, scatter them back) against the dense form. */
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
}
