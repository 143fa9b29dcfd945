package dev.jreft.interventions;

import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.das.RotatedSpaceInterchange;
import dev.jreft.interventions.statics.Collect;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.interventions.statics.ZeroAblation;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The int8 artifacts (dynamically quantised: every linear input quantised, MatMulInteger products) cache every hook
 * and run static and DAS interventions like their float exports.
 */
class Int8ModelsTest {
    static final List<String> TEXTS = List.of("The movie was wonderful.", "The movie was terrible.");

    static HookedModel model(String resource) {
        String tokenizer = resource.replace(".onnx", "-tokenizer.json");
        return HookedModel.fromResources(resource, tokenizer);
    }

    @ParameterizedTest
    @CsvSource({"all-minilm-l6-v2-q.onnx,all-minilm-l6-v2.onnx", "bge-small-en-v1.5-q.onnx,bge-small-en-v1.5.onnx"})
    void everyHookCachesCloseToTheFloatExportAndInterventionsRun(String int8, String fp32) {
        HookedModel q = model(int8);
        HookedModel f = model(fp32);
        Batch batch = q.tokenizer().orElseThrow().encode(TEXTS);
        // every hook of every layer in one run, each near the float model's value (int8 weights and inputs)
        List<String> hooks = q.hooks().names();
        ActivationCache cq = q.runWithCache(batch, hooks);
        ActivationCache cf = f.runWithCache(batch, hooks);
        double worst = 0;
        for (String h : hooks) {
            INDArray a = cq.get(h).castTo(DataType.DOUBLE);
            INDArray b = cf.get(h).castTo(DataType.DOUBLE);
            assertEquals(List.of(b.shape().length, b.length()), List.of(a.shape().length, a.length()), h);
            double relative = a.sub(b).norm2Number().doubleValue() / b.norm2Number().doubleValue();
            assertTrue(relative < 0.3, h + ": int8 differs from float by " + relative + " of its norm");
            worst = Math.max(worst, relative);
        }
        System.out.printf("%s: %d hooks cached, the worst %.4f of its norm from %s's%n", int8, hooks.size(), worst, fp32);
        IntervenableModel m = new IntervenableModel(q);
        String out = q.graph().outputNames().get(0);
        // both sentences have the same length: swapping every position of a block output swaps the outputs exactly
        long n = batch.inputs().get("input_ids").size(1);
        int[][] every = new int[2][(int) n];
        for (int p = 0; p < n; p++) {
            every[0][p] = p;
            every[1][p] = p;
        }
        Batch swapped = new Batch(Map.of("input_ids", flip(batch.inputs().get("input_ids")),
                "attention_mask", flip(batch.inputs().get("attention_mask")),
                "token_type_ids", flip(batch.inputs().get("token_type_ids"))));
        INDArray interchanged = m.run(batch, List.of(InterventionSite.at("blocks.2.block_output",
                new VanillaInterchange()).positions(every).source(Source.run(swapped), every).build())).output(out);
        assertEquals(q.run(swapped).get(out), interchanged);
        // DAS interchanging every rotated coordinate (R a Householder reflection): the same interchange
        int d = (int) q.hooks().config().hidden();
        Nd4j.getRandom().setSeed(4);
        INDArray v = Nd4j.rand(DataType.DOUBLE, d, 1).subi(0.5);
        v.divi(v.norm2Number());
        INDArray reflection = Nd4j.eye(d).castTo(DataType.DOUBLE).subi(v.mmul(v.transpose()).muli(2));
        int[] all = new int[d];
        for (int k = 0; k < d; k++) {
            all[k] = k;
        }
        // (compared at the hook: the reflection's float rounding, 1e-7, moves values across int8 rounding steps
        // downstream, which BGE-q amplifies to 5% of its output's norm; MiniLM-q to 2.5e-7)
        INDArray rotated = m.run(batch, List.of(InterventionSite.at("blocks.2.block_output",
                new RotatedSpaceInterchange(all)).positions(every).source(Source.run(swapped), every)
                .params(Map.of("R", reflection.castTo(DataType.FLOAT))).build()), List.of("blocks.2.block_output"))
                .hook("blocks.2.block_output");
        INDArray source = q.runWithCache(swapped, "blocks.2.block_output").get("blocks.2.block_output");
        double err = rotated.sub(source).norm2Number().doubleValue() / source.norm2Number().doubleValue();
        assertTrue(err < 1e-5, "the full rotated interchange differs from the source by " + err + " of its norm");
        // collecting reads the cached value; ablating heads moves the output
        INDArray collected = m.run(batch, List.of(InterventionSite.at("blocks.3.mlp_activation", new Collect())
                .positions(every).build())).collected().get(0);
        INDArray cached = cq.get("blocks.3.mlp_activation"); // [2, n, 1536]: row 0's positions, then row 1's
        assertEquals(cached.reshape(2 * n, cached.size(2)), collected);
        INDArray ablated = m.run(batch, List.of(InterventionSite.at("blocks.1.attention_value_output",
                new ZeroAblation()).unit(Unit.heads(3)).positions(every).build())).output(out);
        assertNotEquals(q.run(batch).get(out), ablated);
    }

    /**
     * Dynamic quantisation takes each tensor's scale from its whole range (every row, padding included), so the int8
     * model's output jumps where a change moves an extreme value: a 1e-5 shift at the first block moves MiniLM-q's
     * output by percents, the float model's by 1e-5 of its norm or less. Interventions on it are best compared
     * within one batch.
     */
    @org.junit.jupiter.api.Test
    void theInt8ModelsOutputJumpsWithSmallChangesWhereTheFloatModelsDoesNot() {
        double[] moved = new double[2];
        int i = 0;
        for (HookedModel m : List.of(HookedModel.embedded("minilm"), HookedModel.embedded("minilm-q"))) {
            Batch batch = m.tokenizer().orElseThrow().encode(List.of("The film was superb.", "What a dreadful meal.",
                    "Service here is lovely.", "A dull, slow and far too long film."));
            INDArray base = m.run(batch).get("last_hidden_state");
            Nd4j.getRandom().setSeed(1);
            INDArray v = Nd4j.rand(DataType.FLOAT, m.hooks().config().hidden()).subi(0.5).muli(1e-5);
            INDArray out = new IntervenableModel(m).run(batch, List.of(InterventionSite.at("blocks.0.block_input",
                    new dev.jreft.interventions.statics.Addition()).everyPosition(4, batch.seqLen())
                    .params(Map.of("v", v)).build())).output("last_hidden_state");
            moved[i++] = out.sub(base).norm2Number().doubleValue() / base.norm2Number().doubleValue();
        }
        System.out.printf("a 1e-5 shift at blocks.0.block_input moves the output by %.2e of its norm (float MiniLM),"
                + " %.2e (int8)%n", moved[0], moved[1]);
        assertTrue(moved[0] < 1e-4 && moved[1] > 1e-2, java.util.Arrays.toString(moved));
    }

    private static INDArray flip(INDArray rows) {
        return Nd4j.concat(0, rows.getRow(1).reshape(1, -1), rows.getRow(0).reshape(1, -1));
    }
}
