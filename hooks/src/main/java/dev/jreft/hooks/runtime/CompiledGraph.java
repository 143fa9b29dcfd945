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
    /** Signatures remembered at most; decoding meets a new one every step (its past grows). */
    private static final int MAX_SIGNATURES = 256;
    /** Set once a run's outputs disagreed with the shapes the graph declares; then only seen shapes are pinned. */
    private volatile boolean declaredShapesWrong;

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
            boolean declared = false;
            if (specs == null && !declaredShapesWrong) {
                specs = declaredSpecs(feeds, expected, wanted);
                declared = specs != null;
            }
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
                } catch (OrtException e) {
                    if (!declared) {
                        throw e;
                    }
                    declaredShapesWrong = true; // an export whose declared output dims are not what it computes
                    pinned.values().forEach(p -> p.tensor().close());
                    pinned.clear();
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
                    if (outputShapes.size() >= MAX_SIGNATURES) {
                        outputShapes.clear();
                    }
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

    /**
     * The outputs' shapes as the graph declares them, with each named dimension ({@code batch}, {@code sequence},
     * {@code total_sequence}) sized by an input that declares the same name; null unless every wanted output is
     * pinnable that way. A decoding step's shapes are new each step, yet a with-past export declares them all
     * (present [batch, heads, total_sequence, head_dim], the attention mask [batch, total_sequence]), so ORT writes
     * its outputs straight into ND4J memory instead of into heap copies.
     */
    private Map<String, Tensors.Spec> declaredSpecs(Map<String, INDArray> feeds, Set<String> fed,
                                                    Set<String> wanted) {
        Map<String, Long> size = new HashMap<>();
        for (var in : graph.inputs()) {
            INDArray v = feeds.get(in.getName());
            if (v == null || !fed.contains(in.getName()) || !in.getType().getTensorType().hasShape()) {
                continue;
            }
            var dims = in.getType().getTensorType().getShape().getDimList();
            for (int d = 0; d < dims.size() && d < v.rank(); d++) {
                if (!dims.get(d).getDimParam().isEmpty()) {
                    Long before = size.putIfAbsent(dims.get(d).getDimParam(), v.size(d));
                    if (before != null && before != v.size(d)) {
                        return null; // the inputs disagree: leave it to ORT's own check
                    }
                }
            }
        }
        Map<String, Tensors.Spec> specs = new LinkedHashMap<>();
        for (var out : graph.outputs()) {
            if (!wanted.contains(out.getName())) {
                continue;
            }
            var type = out.getType().getTensorType();
            if (!type.hasShape()) {
                return null;
            }
            long[] shape = new long[type.getShape().getDimCount()];
            for (int d = 0; d < shape.length; d++) {
                var dim = type.getShape().getDim(d);
                Long n = dim.hasDimValue() ? Long.valueOf(dim.getDimValue()) : size.get(dim.getDimParam());
                if (n == null) {
                    return null;
                }
                shape[d] = n;
            }
            ai.onnxruntime.OnnxJavaType t = switch (type.getElemType()) {
                case dev.jreft.hooks.graph.ElemTypes.FLOAT -> ai.onnxruntime.OnnxJavaType.FLOAT;
                case dev.jreft.hooks.graph.ElemTypes.INT64 -> ai.onnxruntime.OnnxJavaType.INT64;
                default -> null;
            };
            Tensors.Spec spec = t == null ? null : new Tensors.Spec(shape, t);
            if (spec == null || !spec.pinnable()) {
                return null;
            }
            specs.put(out.getName(), spec);
        }
        return specs.size() == wanted.size() ? specs : null;
    }

    /** False once a run's outputs disagreed with the declared shapes (tests). */
    boolean pinsDeclaredShapes() {
        return !declaredShapesWrong;
    }

    public Map<String, NodeInfo> inputInfo() {
        try {
            return session().getInputInfo();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }
}
