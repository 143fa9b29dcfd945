package dev.jreft.hooks;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jreft.hooks.discovery.DetectionException;
import dev.jreft.hooks.discovery.HookDiscovery;
import dev.jreft.hooks.discovery.HookMap;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.discovery.ModelConfig;
import dev.jreft.hooks.graph.OnnxGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HookDiscoveryTest {
    @ParameterizedTest
    @CsvSource({"gpt2,models/gpt2/gpt2_op14.onnx", "gpt2,models/gpt2/gpt2_op17.onnx",
            "gpt2,models/gpt2/gpt2_past_op17.onnx", "llama,models/llama/llama_op17.onnx",
            "bert,models/bert/bert_op14.onnx"})
    void everyFixtureExportMapsEveryCanonicalHookWithItsShape(String model, String file) {
        JsonNode m = Fixtures.manifest().get("models").get(model);
        HookMap hooks = HookDiscovery.discover(OnnxGraph.load(Fixtures.dir().resolve(file)));
        List<String> expected = new ArrayList<>();
        m.get("hook_names").forEach(n -> expected.add(n.asText()));
        assertEquals(expected, hooks.names());
        ModelConfig c = hooks.config();
        assertEquals(m.get("family").asText(), c.family());
        assertEquals(m.get("config").get("layers").asInt(), c.layers());
        assertEquals(m.get("config").get("heads").asLong(), c.heads());
        assertEquals(m.get("config").get("kv_heads").asLong(), c.kvHeads());
        for (HookPoint h : hooks.all()) {
            JsonNode shape = m.get("hook_shapes").get(h.name());
            long last = shape.get(shape.size() - 1).asLong();
            if (h.layout().positional()) {
                assertEquals(last, h.layout().width(), h.name());
            } else {
                assertEquals(shape.get(1).asLong(), h.layout().heads(), h.name());
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"all-minilm-l6-v2.onnx,6,384,12,1536", "bge-small-en-v1.5.onnx,12,384,12,1536"})
    void realPretrainedEncodersFromMavenArtifacts(String resource, int layers, long d, long heads, long mlp) {
        HookMap hooks = HookDiscovery.discover(OnnxGraph.fromResource(resource));
        assertEquals(new ModelConfig("bert", layers, d, heads, heads, d / heads, mlp), hooks.config());
        assertEquals(layers * 12, hooks.names().size());
        // the last block output is the model's own output tensor
        assertEquals("last_hidden_state", hooks.resolve("blocks." + (layers - 1) + ".block_output").tensor());
    }

    @ParameterizedTest
    @CsvSource({"all-minilm-l6-v2-q.onnx,all-minilm-l6-v2.onnx", "bge-small-en-v1.5-q.onnx,bge-small-en-v1.5.onnx"})
    void int8ExportsHaveEveryHookAtTheFloatExportsTensor(String int8, String fp32) {
        // the int8 artifacts quantise every linear input (DynamicQuantizeLinear named after the tensor, so inside the
        // module that produced it) and multiply with MatMulInteger; the hooks stay the float tensors
        HookMap q = HookDiscovery.discover(OnnxGraph.fromResource(int8));
        HookMap f = HookDiscovery.discover(OnnxGraph.fromResource(fp32));
        assertEquals(f.config(), q.config());
        assertEquals(f.names(), q.names());
        for (HookPoint h : f.all()) {
            assertEquals(h.tensor(), q.resolve(h.name()).tensor(), h.name());
        }
    }

    @Test
    void aHalfRecognisedInt8GraphSaysWhichHooksWerePlacedAndWhichNot() {
        // layer 2's norms renamed away from their module (as a hand-edited export might): the detector must not guess
        OnnxGraph g = OnnxGraph.fromResource("all-minilm-l6-v2-q.onnx");
        var proto = g.toProto().toBuilder();
        for (int i = 0; i < proto.getGraph().getNodeCount(); i++) {
            var node = proto.getGraph().getNode(i);
            if (node.getName().startsWith("/encoder/layer.2/attention/output/LayerNorm/")) {
                proto.getGraphBuilder().setNode(i, node.toBuilder().setName("norm" + i));
            }
        }
        OnnxGraph renamed = OnnxGraph.parse(proto.build().toByteArray(), "renamed-q.onnx", null);
        var e = assertThrows(DetectionException.class, () -> HookDiscovery.discover(renamed));
        assertTrue(e.getMessage().contains("could not place [mlp_input] of layer 2; found [attention_input,"
                + " attention_output, attention_value_output, attention_weight, block_input, block_output,"
                + " key_output, mlp_activation, mlp_output, query_output, value_output]"), e.getMessage());
    }

    @Test
    void unknownHookSuggestsCloseNames() {
        HookMap hooks = HookDiscovery.discover(OnnxGraph.load(Fixtures.dir().resolve("models/gpt2/gpt2_op14.onnx")));
        var e = assertThrows(IllegalArgumentException.class, () -> hooks.resolve("blocks.1.block_outptu"));
        assertTrue(e.getMessage().contains("Did you mean blocks.1.block_output"), e.getMessage());
        var raw = assertThrows(IllegalArgumentException.class, () -> hooks.resolve("tensor:/nope"));
        assertTrue(raw.getMessage().contains("no tensor named '/nope'"), raw.getMessage());
        assertEquals("/transformer/h.0/Add_output_0", hooks.resolve("tensor:/transformer/h.0/Add_output_0").tensor());
    }

    @Test
    void unrecognisedGraphSaysWhatWasFound() {
        // a graph whose node names carry no module path (names stripped)
        OnnxGraph g = OnnxGraph.load(Fixtures.dir().resolve("models/bert/bert_op14.onnx"));
        var proto = g.toProto().toBuilder();
        for (int i = 0; i < proto.getGraph().getNodeCount(); i++) {
            proto.getGraphBuilder().setNode(i, proto.getGraph().getNode(i).toBuilder().setName("n" + i));
        }
        OnnxGraph stripped = OnnxGraph.parse(proto.build().toByteArray(), "stripped.onnx", null);
        var e = assertThrows(DetectionException.class, () -> HookDiscovery.discover(stripped));
        assertTrue(e.getMessage().contains("could not recognise the model family of stripped.onnx"), e.getMessage());
        assertTrue(e.getMessage().contains("MatMul="), e.getMessage());
        assertTrue(e.getMessage().contains("tensor:<name>"), e.getMessage());
    }
}
