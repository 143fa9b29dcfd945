package dev.jreft.interventions;

import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Parameter;
import dev.jreft.interventions.peft.BottleneckAdapter;
import dev.jreft.interventions.peft.DoRA;
import dev.jreft.interventions.peft.ElementwiseScale;
import dev.jreft.interventions.peft.LoRA;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Module edits and the PEFT hook methods beyond the fixture parity cases: inits, scaling, masks, errors. */
class ModuleEditTest {
    static HookedModel bert;

    @BeforeAll
    static void load() throws Exception {
        StaticInterventionTest.load();
        bert = StaticInterventionTest.bert;
    }

    static Map<String, INDArray> fresh(List<Parameter> declared, long seed) {
        Random r = new Random(seed);
        Map<String, INDArray> m = new LinkedHashMap<>();
        declared.forEach(p -> m.put(p.name(), p.init().draw(p.shape(), r)));
        return m;
    }

    static double maxDiff(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue();
    }

    @Test
    void freshLoraDoraAdapterAndIa3LeaveTheModelUnchanged() {
        INDArray plain = bert.run(StaticInterventionTest.bertBase).get("last_hidden_state");
        LinearModule query = bert.modules().get("encoder.layer.0.attention.self.query").orElseThrow();
        IntervenableModel m = new IntervenableModel(bert);
        for (ModuleEdit edit : List.<ModuleEdit>of(new LoRA(4, 8), new DoRA(4, 8), new LoRA(4, 16, 0, true))) {
            Map<String, INDArray> params = fresh(edit.parameters(query, () -> bert.modules().weight(query)), 1);
            INDArray out = m.run(StaticInterventionTest.bertBase, List.of(new ModuleSite(query.path(), edit, params)),
                    List.of(), List.of()).output("last_hidden_state");
            assertTrue(maxDiff(out, plain) < 1e-5, edit.type() + ": " + maxDiff(out, plain));
        }
        for (Intervention iv : List.<Intervention>of(new BottleneckAdapter(8), new ElementwiseScale())) {
            InterventionSite site = InterventionSite.at("blocks.1.mlp_output", iv).everyPosition(2, 6)
                    .params(fresh(iv.parameters(32), 2)).build();
            INDArray out = m.run(StaticInterventionTest.bertBase, List.of(site)).output("last_hidden_state");
            assertTrue(maxDiff(out, plain) < 1e-5, iv.type() + ": " + maxDiff(out, plain));
        }
    }

    @Test
    void loraScalesItsUpdateByAlphaOverRankOrRootRank() {
        assertEquals(2.0, new LoRA(4, 8).scaling());
        assertEquals(4.0, new LoRA(4, 8, 0, true).scaling());
        // twice alpha doubles the change of the module output
        LinearModule value = bert.modules().get("encoder.layer.1.attention.self.value").orElseThrow();
        Map<String, INDArray> params = fresh(new LoRA(2, 1).parameters(value, () -> null), 3);
        params.put("B", Nd4j.rand(DataType.FLOAT, 32, 2));
        IntervenableModel m = new IntervenableModel(bert);
        String read = "tensor:" + value.output();
        INDArray plain = bert.runWithCache(StaticInterventionTest.bertBase, read).get(read);
        INDArray one = m.run(StaticInterventionTest.bertBase, List.of(new ModuleSite(value.path(), new LoRA(2, 1),
                params)), List.of(), List.of(read)).hook(read);
        INDArray two = m.run(StaticInterventionTest.bertBase, List.of(new ModuleSite(value.path(), new LoRA(2, 2),
                params)), List.of(), List.of(read)).hook(read);
        assertTrue(maxDiff(two.sub(plain), one.sub(plain).mul(2)) < 1e-4);
    }

    @Test
    void aDroppedInputWithAnAllZeroMaskLeavesOnlyThePlainModule() {
        LinearModule query = bert.modules().get("encoder.layer.0.attention.self.query").orElseThrow();
        LoRA lora = new LoRA(4, 8, 0.5, false);
        Map<String, INDArray> params = fresh(lora.parameters(query, () -> null), 4);
        params.put("B", Nd4j.rand(DataType.FLOAT, 32, 4));
        IntervenableModel m = new IntervenableModel(bert);
        INDArray plain = bert.run(StaticInterventionTest.bertBase).get("last_hidden_state");
        INDArray evaluation = m.run(StaticInterventionTest.bertBase, List.of(new ModuleSite(query.path(), lora,
                params)), List.of(), List.of()).output("last_hidden_state");
        assertTrue(maxDiff(evaluation, plain) > 1e-3, "without a mask the update applies (evaluation mode)");
        params.put(LoRA.DROPOUT_MASK, Nd4j.zeros(DataType.FLOAT, 2, 6, 32));
        INDArray dropped = m.run(StaticInterventionTest.bertBase, List.of(new ModuleSite(query.path(), lora,
                params)), List.of(), List.of()).output("last_hidden_state");
        assertTrue(maxDiff(dropped, plain) < 1e-5);
    }

    @Test
    void badModulesRanksAndParametersAreClearErrors() {
        IntervenableModel m = new IntervenableModel(bert);
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> m.run(
                StaticInterventionTest.bertBase, List.of(new ModuleSite("encoder.layer.0.attention.self.qery",
                        new LoRA(4, 8), Map.of())), List.of(), List.of()));
        assertTrue(unknown.getMessage().contains("module: found 'encoder.layer.0.attention.self.qery'")
                && unknown.getMessage().contains("query"), unknown.getMessage());
        LinearModule query = bert.modules().get("encoder.layer.0.attention.self.query").orElseThrow();
        IllegalArgumentException rank = assertThrows(IllegalArgumentException.class, () -> m.run(
                StaticInterventionTest.bertBase, List.of(new ModuleSite(query.path(), new LoRA(33, 8), Map.of())),
                List.of(), List.of()));
        assertTrue(rank.getMessage().contains("rank: found 33; valid: an integer in 1..32"), rank.getMessage());
        Map<String, INDArray> params = fresh(new LoRA(4, 8).parameters(query, () -> null), 5);
        params.put("C", Nd4j.zeros(DataType.FLOAT, 1));
        IllegalArgumentException extra = assertThrows(IllegalArgumentException.class, () -> m.run(
                StaticInterventionTest.bertBase, List.of(new ModuleSite(query.path(), new LoRA(4, 8), params)),
                List.of(), List.of()));
        assertTrue(extra.getMessage().contains("params.C: found a value for a parameter lora does not have; valid: A,"
                + " B"), extra.getMessage());
    }
}
