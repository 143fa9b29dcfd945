package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Splits a graph at the earliest differentiable source: the frozen prefix (nodes that depend on no source) runs as
 * a plain inference graph whose outputs, the frontier tensors, become inputs of the suffix. The backward graph is
 * built on the suffix only, so it neither recomputes nor keeps the prefix's activations, and a caller can cache the
 * frontier per batch (a training epoch that sees the same batch again skips the prefix).
 */
public record PrefixSplit(OnnxGraph prefix, OnnxGraph suffix, List<String> frontier) {
    public static PrefixSplit split(OnnxGraph g, List<String> sources, Map<String, long[]> shapes) {
        ElemTypes types = new ElemTypes(g);
        Set<String> dependent = new HashSet<>(sources);
        List<NodeProto> prefixNodes = new ArrayList<>();
        List<NodeProto> suffixNodes = new ArrayList<>();
        for (NodeProto n : g.nodes()) {
            boolean dep = n.getInputList().stream().anyMatch(dependent::contains);
            if (dep) {
                suffixNodes.add(n);
                n.getOutputList().stream().filter(o -> !o.isEmpty()).forEach(dependent::add);
            } else {
                prefixNodes.add(n);
            }
        }
        // Masks built from graph inputs alone (an intervention site's position ∧ feature mask, [b, s, w] bools) are
        // recomputed in the suffix from their small inputs instead of crossing the frontier at full size
        Set<String> fromInputs = new HashSet<>(g.inputNames());
        g.initializers().forEach(t -> fromInputs.add(t.getName()));
        List<NodeProto> recomputed = new ArrayList<>();
        for (NodeProto n : prefixNodes) {
            boolean cheap = n.getInputList().stream().allMatch(i -> i.isEmpty() || fromInputs.contains(i))
                    && n.getOutputList().stream().noneMatch(o -> !o.isEmpty() && types.isFloat(o));
            if (cheap) {
                recomputed.add(n);
                fromInputs.addAll(n.getOutputList());
            }
        }
        // the ones the suffix reads (directly or through another of them) move to the suffix, in order
        Set<String> wanted = new HashSet<>();
        suffixNodes.forEach(n -> wanted.addAll(n.getInputList()));
        List<NodeProto> moved = new ArrayList<>();
        for (int i = recomputed.size() - 1; i >= 0; i--) {
            NodeProto n = recomputed.get(i);
            if (n.getOutputList().stream().anyMatch(wanted::contains)) {
                moved.add(0, n);
                wanted.addAll(n.getInputList());
            }
        }
        suffixNodes.addAll(0, moved);
        // a moved node stays in the prefix too when a remaining prefix node reads it (walked backward: readers
        // come after what they read)
        Set<NodeProto> movedSet = new HashSet<>(moved);
        Set<String> readByPrefix = new HashSet<>();
        List<NodeProto> kept = new ArrayList<>();
        for (int i = prefixNodes.size() - 1; i >= 0; i--) {
            NodeProto n = prefixNodes.get(i);
            if (!movedSet.contains(n) || n.getOutputList().stream().anyMatch(readByPrefix::contains)) {
                kept.add(0, n);
                readByPrefix.addAll(n.getInputList());
            }
        }
        prefixNodes = kept;
        Set<String> movedOutputs = new HashSet<>();
        moved.forEach(n -> movedOutputs.addAll(n.getOutputList()));
        Set<String> producedByPrefix = new HashSet<>();
        prefixNodes.forEach(n -> n.getOutputList().stream().filter(o -> !movedOutputs.contains(o))
                .forEach(producedByPrefix::add));
        Set<String> frontier = new LinkedHashSet<>();
        for (NodeProto n : suffixNodes) {
            for (String in : n.getInputList()) {
                if (producedByPrefix.contains(in) && !g.isInitializer(in)) {
                    frontier.add(in);
                }
            }
        }
        // graph outputs computed entirely in the prefix (e.g. kept hook tensors) are read from the prefix too
        for (String o : g.outputNames()) {
            if (producedByPrefix.contains(o)) {
                frontier.add(o);
            }
        }
        if (frontier.isEmpty()) {
            return new PrefixSplit(g, g, List.of()); // nothing frozen runs before a source: one graph, no prefix
        }
        ModelProto.Builder pm = g.toProto().toBuilder();
        GraphProto.Builder pg = pm.getGraphBuilder();
        pg.clearNode().addAllNode(prefixNodes);
        Set<String> prefixReads = new HashSet<>();
        prefixNodes.forEach(n -> prefixReads.addAll(n.getInputList()));
        List<ValueInfoProto> prefixInputs = new ArrayList<>();
        for (ValueInfoProto v : pg.getInputList()) {
            if (prefixReads.contains(v.getName()) || frontier.contains(v.getName())) {
                prefixInputs.add(v);
            }
        }
        pg.clearInput().addAllInput(prefixInputs);
        List<ai.onnx.proto.OnnxMl.TensorProto> prefixInits = new ArrayList<>();
        for (var t : pg.getInitializerList()) {
            if (prefixReads.contains(t.getName())) {
                prefixInits.add(t);
            }
        }
        pg.clearInitializer().addAllInitializer(prefixInits);
        pg.clearOutput();
        for (String f : frontier) {
            pg.addOutput(valueInfo(f, types.of(f), shapes.get(f)));
        }
        ModelProto.Builder sm = g.toProto().toBuilder();
        GraphProto.Builder sg = sm.getGraphBuilder();
        sg.clearNode().addAllNode(suffixNodes);
        Set<String> suffixReads = new HashSet<>();
        suffixNodes.forEach(n -> suffixReads.addAll(n.getInputList()));
        List<ValueInfoProto> inputs = new ArrayList<>();
        for (ValueInfoProto v : sg.getInputList()) {
            if (suffixReads.contains(v.getName()) || g.isInitializer(v.getName())) {
                inputs.add(v);
            }
        }
        for (String f : frontier) {
            inputs.add(valueInfo(f, types.of(f), shapes.get(f)));
        }
        sg.clearInput().addAllInput(inputs);
        // the suffix keeps only the initializers it reads
        List<ai.onnx.proto.OnnxMl.TensorProto> inits = new ArrayList<>();
        for (var t : sg.getInitializerList()) {
            if (suffixReads.contains(t.getName())) {
                inits.add(t);
            }
        }
        sg.clearInitializer().addAllInitializer(inits);
        List<ValueInfoProto> outs = new ArrayList<>();
        for (ValueInfoProto v : sg.getOutputList()) {
            if (!producedByPrefix.contains(v.getName())) {
                outs.add(v);
            }
        }
        sg.clearOutput().addAllOutput(outs);
        // wrapped, not serialized and parsed again: both halves share the graph's tensors
        return new PrefixSplit(OnnxGraph.wrap(pm.build(), g.origin() + " (frozen prefix)"),
                OnnxGraph.wrap(sm.build(), g.origin() + " (trainable suffix)"), List.copyOf(frontier));
    }

    private static ValueInfoProto valueInfo(String name, int elemType, long[] shape) {
        TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
        if (shape != null) {
            for (long d : shape) {
                s.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
            }
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(elemType).setShape(s))).build();
    }
}
