package dev.jreft.hooks.runtime;

import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.graph.OnnxGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weights off the heap and shared by every ORT session, with the results of sessions that own their copies. */
class SharedInitializersTest {
    private static Batch batch() {
        long[][] ids = new long[2][6];
        long[][] mask = new long[2][6];
        for (int b = 0; b < 2; b++) {
            for (int t = 0; t < 6; t++) {
                ids[b][t] = t == 0 ? 101 : t == 5 ? 102 : 2000 + 37 * t + b;
                mask[b][t] = 1;
            }
        }
        return Batch.of(ids, mask);
    }

    @Test
    void aLargeModelKeepsItsWeightsInNativeMemoryWithTheSameFingerprint() {
        OnnxGraph g = OnnxGraph.fromResource(HookedModel.MINILM_ONNX);
        TensorProto big = g.initializers().stream().max(java.util.Comparator.comparingInt(t -> t.getRawData().size()))
                .orElseThrow();
        assertTrue(big.getRawData().asReadOnlyByteBuffer().isDirect(), "raw data off the heap");
        // the streamed fingerprint is the hash of the serialized bytes, as checkpoints recorded it
        assertEquals(OnnxGraph.sha256(g.toBytes()), g.fingerprint());
        OnnxGraph heap = OnnxGraph.parse(g.toBytes(), "copy", null, null);
        assertEquals(g.fingerprint(), heap.fingerprint());
        assertEquals(g.toProto(), heap.toProto());
    }

    @Test
    void sessionsShareOneTensorPerWeightAndComputeWhatOwnCopiesCompute() throws Exception {
        HookedModel model = HookedModel.minilm();
        Batch b = model.complete(batch());
        Map<String, INDArray> feeds = model.feeds(b);
        String out = model.graph().outputNames().get(0);
        try (OrtRuntime rt = new OrtRuntime(Device.CPU, 8)) {
            int before = SharedInitializers.live(); // other tests' sessions may hold the same weights already
            try (SharedInitializers.Lease lease = SharedInitializers.lease(rt.env(), model.graph())) {
                assertTrue(lease.shared() >= 30, "MiniLM's weight matrices are supplied, not serialized: "
                        + lease.shared());
                assertTrue(lease.model().length < 1 << 20, "the model bytes hold no weights: " + lease.model().length);
            }
            INDArray shared = new CompiledGraph(model.graph(), "a", rt).run(feeds, List.of(out)).get(out);
            int one = SharedInitializers.live();
            assertTrue(one >= before && one > 0);
            OnnxGraph copy = model.graph().copy();
            INDArray again = new CompiledGraph(copy, "b", rt).run(feeds, List.of(out)).get(out);
            assertEquals(one, SharedInitializers.live(), "a second session of the same weights adds none");
            // a session built from the full model bytes (its own copy of every weight) computes the same
            Map<String, ai.onnxruntime.OnnxTensor> in = new java.util.HashMap<>();
            try (var o = new ai.onnxruntime.OrtSession.SessionOptions()) {
                o.setOptimizationLevel(ai.onnxruntime.OrtSession.SessionOptions.OptLevel.ALL_OPT);
                o.addConfigEntry("optimization.disable_specified_optimizers", OrtRuntime.MATMUL_ADD_FUSION);
                o.disablePerSessionThreads();
                try (var own = rt.env().createSession(model.graph().toBytes(), o)) {
                    for (String name : own.getInputNames()) {
                        in.put(name, Tensors.toOrt(rt.env(), feeds.get(name)));
                    }
                    try (var r = own.run(in, java.util.Set.of(out))) {
                        INDArray expected = Tensors.fromOrt((ai.onnxruntime.OnnxTensor) r.get(out).orElseThrow());
                        assertArrayEquals(expected.data().asFloat(), shared.data().asFloat(), 0f);
                        assertArrayEquals(expected.data().asFloat(), again.data().asFloat(), 0f);
                    }
                }
            } finally {
                in.values().forEach(ai.onnxruntime.OnnxTensor::close);
            }
            rt.close();
            assertEquals(before, SharedInitializers.live(), "closing the sessions releases their tensors");
        }
    }

    @Test
    void aGraphCutShortDropsTheWeightsNoNodeReads() throws Exception {
        OnnxGraph g = OnnxGraph.fromResource(HookedModel.MINILM_ONNX);
        var m = g.toProto().toBuilder();
        var gb = m.getGraphBuilder();
        var kept = new java.util.ArrayList<>(gb.getNodeList().subList(0, 12));
        gb.clearNode().addAllNode(kept).clearOutput();
        OnnxGraph cut = OnnxGraph.wrap(m.build(), "cut");
        String last = kept.get(kept.size() - 1).getOutput(0);
        cut.exposeOutput(last, new dev.jreft.hooks.graph.ElemTypes(g).of(last));
        try (OrtRuntime rt = new OrtRuntime(Device.CPU, 2);
             ai.onnxruntime.OrtSession.SessionOptions o = new ai.onnxruntime.OrtSession.SessionOptions();
             OrtRuntime.Transient t = rt.open(cut, o)) {
            assertEquals(List.of(last), List.copyOf(t.session().getOutputNames()));
        }
    }
}
