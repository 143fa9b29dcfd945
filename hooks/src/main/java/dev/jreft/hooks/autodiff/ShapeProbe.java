package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.Tensors;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * Learns the shape of every intermediate tensor with one run that exposes them all (no hand-written shape
 * inference): gradient rules need static shapes to un-broadcast, pad and reshape.
 */
public final class ShapeProbe {
    private ShapeProbe() {
    }

    public static Map<String, long[]> probe(OnnxGraph graph, Map<String, INDArray> feeds) {
        OnnxGraph g = graph.copy();
        ElemTypes types = new ElemTypes(g);
        Set<String> wanted = new LinkedHashSet<>();
        for (NodeProto n : g.nodes()) {
            for (String o : n.getOutputList()) {
                if (!o.isEmpty() && types.of(o) != ElemTypes.UNKNOWN) {
                    wanted.add(o);
                }
            }
        }
        for (String o : wanted) {
            g.exposeOutput(o, types.of(o));
        }
        Map<String, long[]> shapes = new HashMap<>();
        OrtRuntime rt = OrtRuntime.shared();
        Map<String, OnnxTensor> in = new HashMap<>();
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            o.disablePerSessionThreads(); // the environment's shared pool
            try (OrtSession s = rt.env().createSession(g.toBytes(), o)) {
                for (String name : s.getInputNames()) {
                    INDArray v = feeds.get(name);
                    if (v == null) {
                        throw new IllegalArgumentException("shape probe needs input '" + name + "'");
                    }
                    in.put(name, Tensors.toOrt(rt.env(), v));
                    shapes.put(name, v.shape());
                }
                try (OrtSession.Result r = s.run(in, wanted)) {
                    for (String name : wanted) {
                        r.get(name).ifPresent(v -> shapes.put(name, ((OnnxTensor) v).getInfo().getShape()));
                    }
                }
            }
        } catch (OrtException e) {
            throw new IllegalStateException("shape probe failed: " + e.getMessage(), e);
        } finally {
            in.values().forEach(OnnxTensor::close);
        }
        graph.initializers().forEach(t -> shapes.put(t.getName(), t.getDimsList().stream().mapToLong(Long::longValue)
                .toArray()));
        return shapes;
    }
}
