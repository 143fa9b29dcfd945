package dev.jreft.hooks;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.jreft.hooks.discovery.DetectionException;
import dev.jreft.hooks.discovery.HookDiscovery;
import dev.jreft.hooks.discovery.HookMap;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.discovery.ModuleMap;
import dev.jreft.hooks.discovery.ModelConfig;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.TextTokenizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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

    /**
     * A QDQ export (onnxruntime's static quantisation format): every linear input passes a QuantizeLinear →
     * DequantizeLinear pair named after the tensor (so inside the producing module), every weight is an int8
     * initializer behind a DequantizeLinear. Built here from the float MiniLM: its hooks and modules stay where the
     * float graph has them, with the weights int8.
     */
    @Test
    void qdqExportsHaveEveryHookAndModuleAtTheFloatGraphsTensors() {
        OnnxGraph f = OnnxGraph.fromResource("all-minilm-l6-v2.onnx");
        ModuleMap modules = ModuleMap.of(f);
        OnnxGraph qdq = qdq(f, modules);
        HookMap fh = HookDiscovery.discover(f);
        HookMap qh = HookDiscovery.discover(qdq);
        assertEquals(fh.config(), qh.config());
        for (HookPoint h : fh.all()) {
            assertEquals(h.tensor(), qh.resolve(h.name()).tensor(), h.name());
        }
        ModuleMap qm = ModuleMap.of(qdq);
        assertEquals(modules.paths(), qm.paths());
        for (LinearModule m : modules.all()) {
            LinearModule mq = qm.get(m.path()).orElseThrow();
            assertTrue(mq.quantised() && mq.op().equals("MatMul"), mq.toString());
            assertEquals(List.of(m.input(), m.output(), m.bias()), List.of(mq.input(), mq.output(), mq.bias()));
        }
        // and it runs: the int8 graph's output is near the float one's
        TextTokenizer tok = TextTokenizer.fromResource("all-minilm-l6-v2-tokenizer.json");
        Batch batch = tok.encode(List.of("The movie was wonderful."));
        INDArray a = new HookedModel(f, tok, OrtRuntime.shared()).run(batch).get("last_hidden_state");
        INDArray b = new HookedModel(qdq, tok, OrtRuntime.shared()).run(batch).get("last_hidden_state");
        double relative = a.sub(b).norm2Number().doubleValue() / a.norm2Number().doubleValue();
        assertTrue(relative < 0.5, "QDQ output differs by " + relative);
    }

    /** {@code f} with each module's input quantised and dequantised (int8, step 0.05) and its weight int8 per column. */
    private static OnnxGraph qdq(OnnxGraph f, ModuleMap modules) {
        Map<String, List<NodeProto>> before = new HashMap<>(); // MatMul node name → the nodes replacing it
        List<TensorProto> initializers = new ArrayList<>();
        for (LinearModule m : modules.all()) {
            NodeProto matmul = f.nodes().stream().filter(n -> n.getName().equals(m.node())).findFirst().orElseThrow();
            float[] w = f.floats(m.weight()); // [in, out]
            int out = (int) m.out();
            float[] scale = new float[out];
            for (int i = 0; i < w.length; i++) {
                scale[i % out] = Math.max(scale[i % out], Math.abs(w[i]) / 127);
            }
            byte[] wq = new byte[w.length];
            for (int i = 0; i < w.length; i++) {
                wq[i] = (byte) Math.round(w[i] / scale[i % out]);
            }
            String p = m.path();
            initializers.add(TensorProto.newBuilder().setName(p + ".wq").setDataType(TensorProto.DataType.INT8_VALUE)
                    .addDims(m.in()).addDims(m.out()).setRawData(ByteString.copyFrom(wq)).build());
            initializers.add(floatTensor(p + ".ws", scale));
            String x = matmul.getInput(0);
            // named as onnxruntime's quantiser names them: after the tensor, so inside the module that made it
            String producer = f.producer(x).map(NodeProto::getName).orElse("");
            before.put(m.node(), List.of(
                    node(p + ".w_DequantizeLinear", "DequantizeLinear", List.of(p + ".wq", p + ".ws"), p + ".w"),
                    node(producer + "_" + p + "_QuantizeLinear", "QuantizeLinear", List.of(x, "qdq.s", "qdq.z"),
                            x + "_" + p + "_q"),
                    node(producer + "_" + p + "_DequantizeLinear", "DequantizeLinear", List.of(x + "_" + p + "_q",
                            "qdq.s", "qdq.z"), x + "_" + p + "_dq"),
                    matmul.toBuilder().setInput(0, x + "_" + p + "_dq").setInput(1, p + ".w").build()));
        }
        initializers.add(floatTensor("qdq.s", new float[] {0.05f}));
        initializers.add(TensorProto.newBuilder().setName("qdq.z").setDataType(TensorProto.DataType.INT8_VALUE)
                .setRawData(ByteString.copyFrom(new byte[] {0})).build());
        var proto = f.toProto().toBuilder();
        List<NodeProto> nodes = new ArrayList<>();
        for (NodeProto n : f.nodes()) {
            nodes.addAll(before.getOrDefault(n.getName(), List.of(n)));
        }
        proto.getGraphBuilder().clearNode().addAllNode(nodes).addAllInitializer(initializers);
        return OnnxGraph.parse(proto.build().toByteArray(), "minilm-qdq.onnx", null);
    }

    private static NodeProto node(String name, String op, List<String> in, String out) {
        return NodeProto.newBuilder().setName(name).setOpType(op).addAllInput(in).addOutput(out).build();
    }

    private static TensorProto floatTensor(String name, float[] values) {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buf.putFloat(v);
        }
        var t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE)
                .setRawData(ByteString.copyFrom(buf.array()));
        if (values.length > 1) {
            t.addDims(values.length);
        }
        return t.build();
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
