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
        Set<String> producedByPrefix = new HashSet<>();
        prefixNodes.forEach(n -> producedByPrefix.addAll(n.getOutputList()));
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
