package dev.jreft.hooks.runtime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.jreft.hooks.graph.OnnxGraph;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A graph variant with its (cached) ORT session: feed ND4J arrays by input name, get ND4J arrays back. */
public final class CompiledGraph {
    private final OnnxGraph graph;
    private final String fingerprint;
    private final OrtRuntime runtime;
    /** Output shapes seen per input-shape signature, so later runs can pin outputs into preallocated arrays. */
    private final Map<String, Map<String, Tensors.Spec>> outputShapes = new java.util.concurrent.ConcurrentHashMap<>();

    public CompiledGraph(OnnxGraph graph, String fingerprint, OrtRuntime runtime) {
        this.graph = graph;
        this.fingerprint = fingerprint;
        this.runtime = runtime;
    }

    public OnnxGraph graph() {
        return graph;
    }

    public String fingerprint() {
        return fingerprint;
    }

    /** Builds (or finds) the ORT session now, so later runs pay no creation cost. */
    public OrtSession session() {
        return runtime.session(fingerprint + "|dynamic|" + runtime.optionsKey(), graph);
    }

    public Set<String> inputNames() {
        return session().getInputNames();
    }

    /** Runs with {@code feeds}; returns {@code outputs} (all graph outputs when empty). */
    public Map<String, INDArray> run(Map<String, INDArray> feeds, Collection<String> outputs) {
        OrtSession s = session();
        Set<String> expected = s.getInputNames();
        List<String> missing = new ArrayList<>();
        for (String name : expected) {
            if (!feeds.containsKey(name)) {
                missing.add(name);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("missing inputs " + missing + " (graph inputs: " + expected + ")");
        }
        Map<String, OnnxTensor> ort = new HashMap<>();
        Map<String, Tensors.Pinned> pinned = new LinkedHashMap<>();
        try {
            StringBuilder signature = new StringBuilder();
            for (var e : feeds.entrySet()) {
                if (expected.contains(e.getKey())) {
                    ort.put(e.getKey(), Tensors.toOrt(runtime.env(), e.getValue()));
                    signature.append(e.getKey()).append(java.util.Arrays.toString(e.getValue().shape()));
                }
            }
            Set<String> wanted = outputs.isEmpty() ? s.getOutputNames() : new LinkedHashSet<>(outputs);
            String sig = signature.toString() + "->" + wanted;
            Map<String, Tensors.Spec> specs = outputShapes.get(sig);
            if (specs != null) {
                // outputs go straight into ND4J memory: no copy out of ORT
                for (String name : wanted) {
                    pinned.put(name, Tensors.pinned(runtime.env(), specs.get(name)));
                }
                Map<String, OnnxTensor> pins = new LinkedHashMap<>();
                pinned.forEach((k, v) -> pins.put(k, v.tensor()));
                try (OrtSession.Result r = s.run(ort, Set.of(), pins)) {
                    Map<String, INDArray> out = new LinkedHashMap<>();
                    pinned.forEach((k, v) -> out.put(k, v.array()));
                    return out;
                }
            }
            try (OrtSession.Result r = s.run(ort, wanted)) {
                Map<String, INDArray> out = new LinkedHashMap<>();
                Map<String, Tensors.Spec> seen = new LinkedHashMap<>();
                boolean pinnable = true;
                for (String name : wanted) {
                    OnnxTensor v = (OnnxTensor) r.get(name).orElseThrow();
                    out.put(name, Tensors.fromOrt(v));
                    Tensors.Spec spec = new Tensors.Spec(v.getInfo().getShape(), v.getInfo().type);
                    seen.put(name, spec);
                    pinnable &= spec.pinnable();
                }
                if (pinnable) {
                    outputShapes.put(sig, seen);
                }
                return out;
            }
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed to run the graph: " + e.getMessage(), e);
        } finally {
            ort.values().forEach(OnnxTensor::close);
            pinned.values().forEach(p -> p.tensor().close());
            // the ORT tensors read and write the arrays' memory, but do not keep the arrays alive: without this a
            // collection during the run could free an array (ND4J frees its memory when it is collected) that the
            // run was still reading (seen: a labels tensor whose indices were heap addresses)
            java.lang.ref.Reference.reachabilityFence(feeds);
            java.lang.ref.Reference.reachabilityFence(pinned);
        }
    }

    public Map<String, NodeInfo> inputInfo() {
        try {
            return session().getInputInfo();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }
}
