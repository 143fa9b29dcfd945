package dev.jreft.hooks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.discovery.ModuleMap;
import dev.jreft.hooks.discovery.ModuleMap.TargetModules;
import dev.jreft.hooks.discovery.UnknownHookException;
import dev.jreft.hooks.graph.OnnxGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModuleMapTest {
    static ModuleMap load(String file) {
        return ModuleMap.of(OnnxGraph.load(Fixtures.dir().resolve(file)));
    }

    /**
     * The full-finetuning cases list, for every HF parameter, the initializer that holds it: every Linear / Conv1D
     * weight and bias must be found at its module path with that initializer, in its layout.
     */
    @ParameterizedTest
    @CsvSource({"bert_full_finetune", "gpt2_full_finetune"})
    void everyLinearWeightAndBiasOfTheFixturesIsFoundAtItsModulePath(String caseName) throws IOException {
        JsonNode c = new ObjectMapper().readTree(Fixtures.dir().resolve("cases/" + caseName + "/case.json").toFile());
        ModuleMap modules = load(c.get("model_file").asText());
        int weights = 0;
        for (JsonNode p : c.get("parameters")) {
            String name = p.get("name").asText();
            JsonNode init = p.get("onnx_initializers").get(0);
            boolean product = init.get("used_by").toString().contains("MatMul")
                    || init.get("used_by").toString().contains("Gemm");
            if (name.endsWith(".weight") && product && !init.has("via_tied_module")) {
                String path = name.substring(0, name.length() - ".weight".length());
                LinearModule m = modules.get(path).orElseThrow(() -> new AssertionError(path + " not in "
                        + modules.paths()));
                assertEquals(init.get("initializer").asText(), m.weight(), path);
                // HF Linear weights [out, in] are folded transposed into MatMul: [in, out]; Conv1D is [in, out]
                List<Long> hf = new java.util.ArrayList<>();
                p.get("shape").forEach(x -> hf.add(x.asLong()));
                boolean conv1d = init.get("layout").asText().equals("identical");
                assertEquals(conv1d ? hf.get(0) : hf.get(1), m.in(), path);
                assertEquals(conv1d ? hf.get(1) : hf.get(0), m.out(), path);
                assertEquals(LinearModule.Layout.IN_OUT, m.layout(), path);
                weights++;
            }
            if (name.endsWith(".bias") && modules.get(name.substring(0, name.length() - 5)).isPresent()) {
                assertEquals(init.get("initializer").asText(), modules.get(name.substring(0, name.length() - 5))
                        .get().bias(), name);
            }
        }
        assertTrue(weights >= 8, "checked " + weights + " weights");
    }

    @Test
    void llamaModulesHaveTheirSizesAndNoBias() {
        ModuleMap m = load("models/llama/llama_op17.onnx");
        LinearModule q = m.get("model.layers.1.self_attn.q_proj").orElseThrow();
        assertEquals(32, q.in());
        assertEquals(32, q.out());
        assertNull(q.bias());
        assertEquals(16, m.get("model.layers.0.self_attn.k_proj").orElseThrow().out()); // 2 KV heads of 8
        assertEquals(64, m.get("model.layers.0.mlp.down_proj").orElseThrow().in());
        // 2 layers × (q, k, v, o, gate, up, down) + lm_head
        assertEquals(15, m.all().size(), m.paths().toString());
    }

    @Test
    void moduleBoundariesAreTheHookTensors() {
        OnnxGraph g = OnnxGraph.load(Fixtures.dir().resolve("models/gpt2/gpt2_op17.onnx"));
        var hooks = dev.jreft.hooks.discovery.HookDiscovery.discover(g);
        ModuleMap m = ModuleMap.of(g);
        LinearModule cAttn = m.get("transformer.h.0.attn.c_attn").orElseThrow();
        assertEquals("Gemm", cAttn.op());
        assertEquals(96, cAttn.out());
        assertEquals(hooks.resolve("blocks.0.attention_input").tensor(), cAttn.input());
        LinearModule cProj = m.get("transformer.h.1.mlp.c_proj").orElseThrow();
        assertEquals(hooks.resolve("blocks.1.mlp_activation").tensor(), cProj.input());
        assertEquals(hooks.resolve("blocks.1.mlp_output").tensor(), cProj.output());
    }

    @Test
    void peftTargetingBySuffixPathRegexAndAllLinear() {
        ModuleMap m = load("models/llama/llama_op17.onnx");
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"),
                paths(m.select(TargetModules.names(List.of("q_proj")))));
        assertEquals(List.of("model.layers.1.self_attn.v_proj"),
                paths(m.select(TargetModules.names(List.of("model.layers.1.self_attn.v_proj")))));
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"),
                paths(m.select(TargetModules.parse("model\\.layers\\.0\\.self_attn\\.(q|v)_proj"))));
        List<LinearModule> all = m.select(TargetModules.parse("all-linear"));
        assertEquals(14, all.size());
        assertFalse(paths(all).contains("lm_head"), "all-linear leaves out the output layer");
        // a suffix matches whole names only: "proj" is not a module name
        UnknownHookException none = assertThrows(UnknownHookException.class,
                () -> m.select(TargetModules.names(List.of("proj"))));
        assertTrue(none.getMessage().contains("q_proj") && none.getMessage().contains("all-linear"),
                none.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> TargetModules.parse("q_proj("));
        assertTrue(bad.getMessage().startsWith("found 'q_proj(', which is not a regular expression"),
                bad.getMessage());
    }

    @Test
    void theRealMiniLmHasSixLinearModulesPerLayer() {
        ModuleMap m = ModuleMap.of(OnnxGraph.fromResource("all-minilm-l6-v2.onnx"));
        LinearModule query = m.get("encoder.layer.2.attention.self.query").orElseThrow();
        assertEquals(384, query.in());
        assertEquals(384, query.out());
        assertTrue(query.hasBias());
        assertEquals(1536, m.get("encoder.layer.5.intermediate.dense").orElseThrow().out());
        assertEquals(36, m.select(TargetModules.parse("all-linear")).size(), m.paths().toString());
    }

    @ParameterizedTest
    @CsvSource({"all-minilm-l6-v2-q.onnx,all-minilm-l6-v2.onnx", "bge-small-en-v1.5-q.onnx,bge-small-en-v1.5.onnx"})
    void int8ModulesAreTheFloatModulesWithWeightsWithinHalfAStep(String int8, String fp32) {
        ModuleMap q = ModuleMap.of(OnnxGraph.fromResource(int8));
        OnnxGraph qGraph = OnnxGraph.fromResource(int8);
        ModuleMap f = ModuleMap.of(OnnxGraph.fromResource(fp32));
        assertEquals(f.paths(), q.paths());
        for (LinearModule fm : f.all()) {
            LinearModule qm = q.get(fm.path()).orElseThrow();
            assertTrue(qm.quantised() && !fm.quantised(), qm.toString());
            assertEquals("MatMulInteger", qm.op());
            assertEquals(List.of(fm.in(), fm.out(), (long) fm.layout().ordinal()),
                    List.of(qm.in(), qm.out(), (long) qm.layout().ordinal()), fm.path());
            assertEquals(List.of(fm.input(), fm.output(), fm.bias()), List.of(qm.input(), qm.output(), qm.bias()),
                    fm.path());
            // dequantised, every weight is the float one to within half its column's quantisation step
            float[] scale = qGraph.floats(qm.weightScale());
            float[] wq = q.weight(qm).data().asFloat(); // [out, in]
            float[] wf = f.weight(fm).data().asFloat();
            for (int i = 0; i < wf.length; i++) {
                float step = scale[scale.length == 1 ? 0 : (int) (i / fm.in())];
                assertTrue(Math.abs(wq[i] - wf[i]) <= step / 2 * 1.001f + 1e-7f, fm.path() + " weight " + i + ": "
                        + wq[i] + " vs " + wf[i] + " (step " + step + ")");
            }
        }
    }

    private static List<String> paths(List<LinearModule> ms) {
        return ms.stream().map(LinearModule::path).toList();
    }
}
