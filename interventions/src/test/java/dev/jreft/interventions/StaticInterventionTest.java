package dev.jreft.interventions;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.io.Npy;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.reft.LoReFT;
import dev.jreft.interventions.statics.Addition;
import dev.jreft.interventions.statics.Collect;
import dev.jreft.interventions.statics.Subtraction;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.interventions.statics.ZeroAblation;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StaticInterventionTest {
    static Path fixtures;
    static HookedModel gpt2;
    static HookedModel bert;
    static Batch gptBase;
    static Batch gptSource;
    static Batch bertBase;
    static Batch bertSource;

    @BeforeAll
    static void load() throws Exception {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "fixtures not found at " + FixturesLocation.configured());
        fixtures = dir.get();
        gpt2 = HookedModel.load(fixtures.resolve("models/gpt2/gpt2_op14.onnx"));
        bert = HookedModel.load(fixtures.resolve("models/bert/bert_op14.onnx"));
        gptBase = batch("models/gpt2/inputs", "input_ids", "attention_mask");
        gptSource = batch("models/gpt2/source_inputs", "input_ids", "attention_mask");
        bertBase = batch("models/bert/inputs", "input_ids", "attention_mask", "token_type_ids");
        bertSource = batch("models/bert/source_inputs", "input_ids", "attention_mask", "token_type_ids");
    }

    static Batch batch(String dir, String... names) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        for (String n : names) {
            m.put(n, Npy.read(fixtures.resolve(dir).resolve(n + ".npy")));
        }
        return new Batch(m);
    }

    static final int[][] ALL_REAL = {{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3}};

    @Test
    void interchangeOfTheLastBlockAtEveryPositionReproducesTheSource() {
        // base row b takes source row b at the same positions; BERT's output is the last block output
        int[][] pos = {{0, 1, 2, 3, 4}, {0, 1, 2, 3}};
        InterventionResult r = new IntervenableModel(bert).run(bertBase, List.of(
                InterventionSite.at("blocks.1.block_output", new VanillaInterchange()).positions(pos)
                        .source(Source.run(bertSource), pos).build()));
        INDArray src = bert.run(bertSource).get("last_hidden_state");
        INDArray out = r.output("last_hidden_state");
        for (int b = 0; b < 2; b++) {
            for (int p : pos[b]) {
                assertEquals(src.get(NDArrayIndex.point(b), NDArrayIndex.point(p)),
                        out.get(NDArrayIndex.point(b), NDArrayIndex.point(p)));
            }
        }
        // the untouched position 5 of row 0 keeps the base value exactly
        INDArray base = bert.run(bertBase).get("last_hidden_state");
        assertEquals(base.get(NDArrayIndex.point(0), NDArrayIndex.point(5)),
                out.get(NDArrayIndex.point(0), NDArrayIndex.point(5)));
    }

    @Test
    void cachedSourceEqualsSourceBatchRunInTheSameCall() {
        int[][] pos = {{1, 4}, {0, 3}};
        int[][] src = {{3, 2}, {5, 1}};
        IntervenableModel m = new IntervenableModel(gpt2);
        INDArray cached = gpt2.runWithCache(gptSource, "blocks.0.block_output").get("blocks.0.block_output");
        INDArray a = m.run(gptBase, List.of(InterventionSite.at("blocks.0.block_output", new VanillaInterchange())
                .positions(pos).source(Source.run(gptSource), src).build())).output("logits");
        INDArray b = m.run(gptBase, List.of(InterventionSite.at("blocks.0.block_output", new VanillaInterchange())
                .positions(pos).source(Source.cached(cached), src).build())).output("logits");
        assertEquals(a, b);
    }

    @Test
    void severalInterventionsAtSeveralHooksInOneRun() {
        INDArray v = Nd4j.rand(DataType.FLOAT, 32).muli(3);
        IntervenableModel m = new IntervenableModel(gpt2);
        // +v then -v at the same hook cancel; a zero ablation of an empty subspace elsewhere changes nothing
        InterventionResult r = m.run(gptBase, List.of(
                InterventionSite.at("blocks.0.mlp_output", new Addition()).positions(ALL_REAL)
                        .params(Map.of("v", v)).build(),
                InterventionSite.at("blocks.0.mlp_output", new Subtraction()).positions(ALL_REAL)
                        .params(Map.of("v", v)).build(),
                InterventionSite.at("blocks.1.attention_output", new ZeroAblation()).positions(new int[][] {{2}, {1}})
                        .subspace().build()));
        INDArray base = gpt2.run(gptBase).get("logits");
        assertTrue(base.sub(r.output("logits")).amaxNumber().doubleValue() < 1e-5);
        // while an addition alone moves the output
        InterventionResult moved = m.run(gptBase, List.of(InterventionSite.at("blocks.0.mlp_output", new Addition())
                .positions(ALL_REAL).params(Map.of("v", v)).build()));
        assertTrue(base.sub(moved.output("logits")).amaxNumber().doubleValue() > 1e-2);
    }

    @Test
    void subspaceAndHeadUnitsTouchOnlyTheirFeatures() {
        IntervenableModel m = new IntervenableModel(gpt2);
        String hook = "blocks.0.attention_value_output";
        InterventionResult r = m.run(gptBase, List.of(InterventionSite.at(hook, new ZeroAblation())
                .unit(Unit.heads(1, 3)).subspace(0, 7).positions(new int[][] {{2}, {0}}).build()), List.of(hook));
        INDArray before = gpt2.runWithCache(gptBase, hook).get(hook);
        INDArray after = r.hook(hook);
        INDArray diff = before.sub(after);
        for (int f = 0; f < 32; f++) {
            boolean zeroed = f == 8 || f == 15 || f == 24 || f == 31;
            assertEquals(zeroed ? 0.0 : before.getDouble(0, 2, f), after.getDouble(0, 2, f), 0.0, "feature " + f);
        }
        assertEquals(0.0, diff.get(NDArrayIndex.point(0), NDArrayIndex.point(3)).amaxNumber().doubleValue(), 0.0);
    }

    @Test
    void collectReadsTheSelectedRowsAndFeatures() {
        IntervenableModel m = new IntervenableModel(gpt2);
        String hook = "blocks.1.query_output";
        InterventionResult r = m.run(gptBase, List.of(InterventionSite.at(hook, new Collect()).unit(Unit.heads(2))
                .positions(new int[][] {{1, 4}, {3}}).build()));
        INDArray full = gpt2.runWithCache(gptBase, hook).get(hook);
        INDArray c = r.collected().get(0);
        assertEquals(3, c.size(0));
        assertEquals(8, c.size(1));
        assertEquals(full.get(NDArrayIndex.point(0), NDArrayIndex.point(4), NDArrayIndex.interval(16, 24)),
                c.getRow(1));
        assertEquals(full.get(NDArrayIndex.point(1), NDArrayIndex.point(3), NDArrayIndex.interval(16, 24)),
                c.getRow(2));
        assertEquals(gpt2.run(gptBase).get("logits"), r.output("logits"));
    }

    @Test
    void newPositionsAndSourcesReuseTheCompiledGraph() {
        IntervenableModel m = new IntervenableModel(gpt2);
        var site1 = InterventionSite.at("blocks.1.mlp_input", new VanillaInterchange()).positions(new int[][] {{0}, {1}})
                .source(Source.run(gptSource), new int[][] {{1}, {2}}).build();
        var site2 = InterventionSite.at("blocks.1.mlp_input", new VanillaInterchange()).unit(Unit.POS)
                .positions(new int[][] {{3, 5}, {2}}).source(Source.run(gptBase), new int[][] {{4, 0}, {1}}).build();
        m.run(gptBase, List.of(site1));
        int before = gpt2.variantCount();
        m.run(gptBase, List.of(site2));
        assertEquals(before, gpt2.variantCount(), "a new position list must not build a new graph");
    }

    @Test
    void badInputGetsClearErrors() {
        IntervenableModel m = new IntervenableModel(gpt2);
        String hook = "blocks.0.block_output";
        var outOfRange = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new ZeroAblation()).positions(new int[][] {{6}, {0}}).build())));
        assertTrue(outOfRange.getMessage().contains("out of range (sequence length 6, valid 0..5)"),
                outOfRange.getMessage());
        var padding = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new ZeroAblation()).positions(new int[][] {{0}, {4}}).build())));
        assertTrue(padding.getMessage().contains("is on padding (real tokens of that example: 0..3)"),
                padding.getMessage());
        var batch = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new ZeroAblation()).positions(new int[][] {{0}}).build())));
        assertTrue(batch.getMessage().contains("batch mismatch"), batch.getMessage());
        var head = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at("blocks.0.query_output", new ZeroAblation()).unit(Unit.heads(4))
                        .positions(new int[][] {{0}, {0}}).build())));
        assertTrue(head.getMessage().contains("head index 4 is out of range") && head.getMessage().contains("valid: 0..3"),
                head.getMessage());
        var shape = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new VanillaInterchange()).positions(new int[][] {{0}, {0}})
                        .source(Source.cached(Nd4j.zeros(DataType.FLOAT, 2, 6, 16)), new int[][] {{0}, {0}}).build())));
        assertTrue(shape.getMessage().contains("source/base shape mismatch"), shape.getMessage());
        var sourceBatch = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new VanillaInterchange()).positions(new int[][] {{0}, {0}})
                        .source(Source.run(Batch.of(new long[][] {{1, 2}}, new long[][] {{1, 1}})),
                                new int[][] {{0}, {0}}).build())));
        assertTrue(sourceBatch.getMessage().contains("batch mismatch"), sourceBatch.getMessage());
        var unknown = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at("blocks.0.mlp_ouput", new ZeroAblation()).positions(ALL_REAL).build())));
        assertTrue(unknown.getMessage().contains("Did you mean blocks.0.mlp_output"), unknown.getMessage());
        var pattern = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at("blocks.0.attention_weight", new ZeroAblation()).positions(ALL_REAL).build())));
        assertTrue(pattern.getMessage().contains("[batch, seq, width] hooks only"), pattern.getMessage());
        var param = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new Addition()).positions(ALL_REAL)
                        .params(Map.of("v", Nd4j.zeros(DataType.FLOAT, 31))).build())));
        assertTrue(param.getMessage().contains("params.v: found shape [31]; valid: shape [32]"), param.getMessage());
        var extra = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new Addition()).positions(ALL_REAL).params(Map.of("v",
                        Nd4j.zeros(DataType.FLOAT, 32), "scale", Nd4j.zeros(DataType.FLOAT, 1))).build())));
        assertTrue(extra.getMessage().contains("params.scale: found a value for a parameter addition does not have;"
                + " valid: v"), extra.getMessage());
        var nan = assertThrows(IllegalArgumentException.class, () -> m.run(gptBase, List.of(
                InterventionSite.at(hook, new Addition()).positions(ALL_REAL).params(Map.of("v",
                        Nd4j.zeros(DataType.FLOAT, 32).putScalar(5, Float.NaN))).build())));
        assertTrue(nan.getMessage().contains("params.v: found NaN at element 5; valid: finite values"),
                nan.getMessage());
    }

    /**
     * Regression: the compiled-graph key once ignored a site's declared shapes, so a rank-8 LoReFT at a hook reused
     * the rank-4 graph and ORT refused its parameters ("Got invalid dimensions for input: jreft.site0.W").
     */
    @Test
    void loreftsOfTwoRanksAtOneHookEachGetTheirOwnGraph() {
        IntervenableModel m = new IntervenableModel(gpt2);
        int[][] pos = {{0, 5}, {0, 3}};
        for (int rank : new int[] {4, 8, 4}) {
            java.util.Random random = new java.util.Random(rank);
            Map<String, INDArray> params = new LinkedHashMap<>();
            params.put("R", dev.jreft.interventions.params.Orthogonal.randomRows(rank, 32, random));
            params.put("W", Nd4j.rand(DataType.FLOAT, rank, 32));
            params.put("b", Nd4j.zeros(DataType.FLOAT, rank));
            InterventionResult r = m.run(gptBase, List.of(InterventionSite.at("blocks.0.block_output",
                    new LoReFT(rank)).positions(pos).params(params).build()));
            assertEquals(3, r.output("logits").rank(), "rank " + rank);
        }
    }
}
