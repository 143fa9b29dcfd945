package dev.jreft.interventions;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.interventions.prompt.PTuning;
import dev.jreft.interventions.prompt.PromptTuning;
import dev.jreft.interventions.statics.Addition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Soft prompts and prefixes on the BERT fixture: what the user sees is indexed by the real tokens, as without them. */
class SequenceEditTest {
    @BeforeAll
    static void load() throws Exception {
        StaticInterventionTest.load();
    }

    private static SequenceSite prompt(int length, long seed) {
        java.util.Random r = new java.util.Random(seed);
        float[] v = new float[length * 32];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return new SequenceSite(new PromptTuning(length), Map.of("prompt", Nd4j.create(v, new long[] {length, 32},
                'c')));
    }

    @Test
    void outputsAndHooksKeepTheRealTokensPositions() {
        Batch base = StaticInterventionTest.bertBase;
        IntervenableModel m = new IntervenableModel(StaticInterventionTest.bert);
        InterventionResult plain = m.run(base, List.of(), List.of(), List.of("blocks.0.block_output"));
        InterventionResult prompted = m.run(base, List.of(prompt(3, 1)), List.of(), List.of("blocks.0.block_output"));
        INDArray out = prompted.output("last_hidden_state");
        assertArrayEquals(plain.output("last_hidden_state").shape(), out.shape());
        assertArrayEquals(plain.hook("blocks.0.block_output").shape(), prompted.hook("blocks.0.block_output").shape());
        assertTrue(out.sub(plain.output("last_hidden_state")).amaxNumber().doubleValue() > 1e-3,
                "the real tokens attend to the prompt");
        // a site at the user's position 2 of row 0 moves that position's hook value by v, and nothing else
        INDArray v = Nd4j.linspace(1, 32, 32, DataType.FLOAT);
        InterventionSite add = InterventionSite.at("blocks.0.block_output", new Addition())
                .positions(new int[][] {{2}, {1}}).params(Map.of("v", v)).build();
        InterventionResult edited = m.run(base, List.of(prompt(3, 1)), List.of(add), List.of("blocks.0.block_output"));
        INDArray delta = edited.hook("blocks.0.block_output").sub(prompted.hook("blocks.0.block_output"));
        assertTrue(delta.get(org.nd4j.linalg.indexing.NDArrayIndex.point(0), org.nd4j.linalg.indexing.NDArrayIndex
                .point(2)).sub(v).amaxNumber().doubleValue() < 1e-4);
        delta.get(org.nd4j.linalg.indexing.NDArrayIndex.point(0), org.nd4j.linalg.indexing.NDArrayIndex.point(2))
                .assign(0);
        delta.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1), org.nd4j.linalg.indexing.NDArrayIndex.point(1))
                .assign(0);
        assertEquals(0, delta.amaxNumber().doubleValue(), 1e-6);
    }

    /** A prefix lengthens only the keys and values: outputs, hooks and sites keep the real tokens' positions. */
    @Test
    void aPrefixKeepsOutputsHooksAndSitesAtTheRealTokens() {
        Batch base = StaticInterventionTest.bertBase;
        IntervenableModel m = new IntervenableModel(StaticInterventionTest.bert);
        java.util.Random r = new java.util.Random(8);
        var prefix = new dev.jreft.interventions.prompt.PrefixTuning(2, 0);
        Map<String, INDArray> params = new java.util.LinkedHashMap<>();
        for (var p : prefix.parameters(SequenceShape.of(StaticInterventionTest.bert), () -> null)) {
            params.put(p.name(), p.init().draw(p.shape(), r));
        }
        SequenceSite site = new SequenceSite(prefix, params);
        InterventionResult plain = m.run(base, List.of(), List.of(), List.of("blocks.0.block_output"));
        InterventionResult prefixed = m.run(base, List.of(site), List.of(), List.of("blocks.0.block_output"));
        assertArrayEquals(plain.output("last_hidden_state").shape(), prefixed.output("last_hidden_state").shape());
        assertTrue(prefixed.output("last_hidden_state").sub(plain.output("last_hidden_state")).amaxNumber()
                .doubleValue() > 1e-3, "the real tokens attend to the prefix");
        INDArray v = Nd4j.linspace(1, 32, 32, DataType.FLOAT);
        InterventionSite add = InterventionSite.at("blocks.0.block_output", new Addition())
                .positions(new int[][] {{2}, {1}}).params(Map.of("v", v)).build();
        INDArray delta = m.run(base, List.of(site), List.of(add), List.of("blocks.0.block_output"))
                .hook("blocks.0.block_output").sub(prefixed.hook("blocks.0.block_output"));
        assertTrue(delta.get(org.nd4j.linalg.indexing.NDArrayIndex.point(1), org.nd4j.linalg.indexing.NDArrayIndex
                .point(1)).sub(v).amaxNumber().doubleValue() < 1e-4);
    }

    @Test
    void promptAndHookSiteTrainTogether() {
        Batch base = StaticInterventionTest.bertBase;
        IntervenableModel m = new IntervenableModel(StaticInterventionTest.bert);
        INDArray v = Nd4j.linspace(1, 32, 32, DataType.FLOAT).muli(0.01);
        InterventionSite add = InterventionSite.at("blocks.0.block_output", new Addition())
                .positions(new int[][] {{2}, {1}}).params(Map.of("v", v)).build();
        var g = m.gradients(base, List.of(prompt(2, 4)), List.of(add), null, graph -> {
            String[] loss = new String[1];
            graph.append("prompt-test-loss", b -> loss[0] = b.op("ReduceSum", List.of(b.op("Mul",
                    List.of("last_hidden_state", "last_hidden_state"))), dev.jreft.hooks.graph.Attr.i("keepdims", 0)));
            return loss[0];
        }, Map.of(), List.of());
        assertArrayEquals(new long[] {2, 32}, g.perEdit().get(0).get("prompt").shape());
        assertTrue(g.perEdit().get(0).get("prompt").amaxNumber().doubleValue() > 0);
        assertTrue(g.perSite().get(0).get("v").amaxNumber().doubleValue() > 0);
    }

    @Test
    void badLengthsAreOneLineErrors() {
        assertThrows(ConfigException.class, () -> new PromptTuning(0));
        assertThrows(ConfigException.class, () -> new PTuning(3, 0));
        assertThrows(ConfigException.class, () -> new PromptTuning(2, PromptTuning.Start.tokens(5, 6, 7)));
        IntervenableModel m = new IntervenableModel(StaticInterventionTest.bert);
        long positions = StaticInterventionTest.bert.inputLimits().maxPositions().orElseThrow();
        var e = assertThrows(ConfigException.class, () -> m.run(StaticInterventionTest.bertBase,
                List.of(prompt((int) positions, 2)), List.of(), List.of()));
        assertTrue(e.getMessage().contains("num_virtual_tokens") && e.getMessage().contains("positions"),
                e.getMessage());
    }
}
