package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.hooks.runtime.Tensors;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Learns the shape of every intermediate tensor with runs that expose them (no hand-written shape inference):
 * gradient rules need static shapes to un-broadcast, pad and reshape.
 *
 * <p>The tensors are exposed a slice at a time, in graph order, each slice by a graph cut after its last producer:
 * a run that returned every intermediate at once held all of them together (MiniLM at 16 x 32: 316 MB, the peak of
 * a whole training job), one slice holds about {@link #SLICE_BYTES}. The slice size adapts to the sizes seen.
 */
public final class ShapeProbe {
    /** About how many bytes of exposed tensors one run may return. */
    static final long SLICE_BYTES = 32L << 20;
    private static final int FIRST_SLICE = 32;

    private ShapeProbe() {
    }

    public static Map<String, long[]> probe(OnnxGraph graph, Map<String, INDArray> feeds) {
        ElemTypes types = new ElemTypes(graph);
        List<NodeProto> nodes = graph.nodes();
        List<String> wanted = new ArrayList<>();
        List<Integer> producer = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < nodes.size(); i++) {
            for (String o : nodes.get(i).getOutputList()) {
                if (!o.isEmpty() && types.of(o) != ElemTypes.UNKNOWN && seen.add(o)) {
                    wanted.add(o);
                    producer.add(i);
                }
            }
        }
        Map<String, long[]> shapes = new HashMap<>();
        for (String name : graph.inputNames()) {
            INDArray v = feeds.get(name);
            if (v == null) {
                throw new IllegalArgumentException("shape probe needs input '" + name + "'");
            }
            shapes.put(name, v.shape());
        }
        OrtRuntime rt = OrtRuntime.shared();
        int slice = FIRST_SLICE;
        for (int from = 0; from < wanted.size(); ) {
            int to = Math.min(wanted.size(), from + slice);
            List<String> part = wanted.subList(from, to);
            long bytes = run(cut(graph, producer.get(to - 1) + 1, part, types), feeds, part, shapes, rt);
            long perTensor = Math.max(1, bytes / part.size());
            slice = (int) Math.max(8, Math.min(4096, SLICE_BYTES / perTensor));
            from = to;
        }
        graph.initializers().forEach(t -> shapes.put(t.getName(), t.getDimsList().stream().mapToLong(Long::longValue)
                .toArray()));
        return shapes;
    }

    /** {@code graph}'s first {@code nodes} nodes, with {@code outputs} as its only outputs. */
    private static OnnxGraph cut(OnnxGraph graph, int nodes, List<String> outputs, ElemTypes types) {
        ModelProto.Builder m = graph.toProto().toBuilder();
        GraphProto.Builder g = m.getGraphBuilder();
        List<NodeProto> kept = new ArrayList<>(g.getNodeList().subList(0, nodes));
        g.clearNode().addAllNode(kept).clearOutput();
        OnnxGraph cut = OnnxGraph.wrap(m.build(), graph.origin());
        for (String o : outputs) {
            cut.exposeOutput(o, types.of(o));
        }
        return cut;
    }

    /** Runs {@code g}, records the shapes of {@code outputs}; returns their total size in bytes. */
    private static long run(OnnxGraph g, Map<String, INDArray> feeds, List<String> outputs,
                            Map<String, long[]> shapes, OrtRuntime rt) {
        Map<String, OnnxTensor> in = new HashMap<>();
        long bytes = 0;
        try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
            o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            o.disablePerSessionThreads(); // the environment's shared pool
            try (OrtRuntime.Transient t = rt.open(g, o)) {
                OrtSession s = t.session();
                for (String name : s.getInputNames()) {
                    INDArray v = feeds.get(name);
                    if (v == null) {
                        throw new IllegalArgumentException("shape probe needs input '" + name + "'");
                    }
                    in.put(name, Tensors.toOrt(rt.env(), v));
                }
                try (OrtSession.Result r = s.run(in, new LinkedHashSet<>(outputs))) {
                    for (String name : outputs) {
                        var v = r.get(name);
                        if (v.isPresent()) {
                            var info = ((OnnxTensor) v.get()).getInfo();
                            shapes.put(name, info.getShape());
                            bytes += info.getNumElements() * Math.max(1, info.type.size);
                        }
                    }
                }
            }
        } catch (OrtException e) {
            throw new IllegalStateException("shape probe failed: " + e.getMessage(), e);
        } finally {
            in.values().forEach(OnnxTensor::close);
            java.lang.ref.Reference.reachabilityFence(feeds); // the ORT tensors read the arrays without holding them
        }
        return bytes;
    }
}
