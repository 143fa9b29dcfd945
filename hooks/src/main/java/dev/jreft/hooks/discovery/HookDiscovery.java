package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Collectors;

/** Finds the family of an exported transformer and maps every canonical hook to its tensor. */
public final class HookDiscovery {
    private static final List<FamilyDetector> DETECTORS = List.of(
            new Gpt2Detector(), new LlamaDetector(), new BertDetector());

    private HookDiscovery() {
    }

    public static HookMap discover(OnnxGraph graph) {
        ModuleScope scope = new ModuleScope(graph, new ElemTypes(graph));
        for (FamilyDetector d : DETECTORS) {
            Optional<HookMap> m = d.detect(scope);
            if (m.isPresent()) {
                return m.get();
            }
        }
        throw new DetectionException(describeUnrecognised(graph));
    }

    /** As {@link #discover}, but a graph of no known family gets a map of raw {@code tensor:} hooks only. */
    public static HookMap discoverOrRaw(OnnxGraph graph) {
        try {
            return discover(graph);
        } catch (DetectionException e) {
            return HookMap.rawOnly(graph, e.getMessage());
        }
    }

    private static String describeUnrecognised(OnnxGraph graph) {
        Map<String, Long> ops = graph.nodes().stream()
                .collect(Collectors.groupingBy(NodeProto::getOpType, TreeMap::new, Collectors.counting()));
        List<String> prefixes = graph.nodes().stream().map(NodeProto::getName)
                .map(n -> n.lastIndexOf('/') > 0 ? n.substring(0, n.lastIndexOf('/') + 1) : n)
                .distinct().limit(8).toList();
        String families = DETECTORS.stream().map(d -> d.family() + " (" + d.signature() + ")")
                .collect(Collectors.joining(", "));
        return "could not recognise the model family of " + graph.origin() + ": no node names like " + families
                + ". Found " + graph.nodes().size() + " nodes, inputs " + graph.inputNames() + ", outputs "
                + graph.outputNames() + ", ops " + ops + ", first name prefixes " + prefixes
                + ". Raw tensors still work as hooks: tensor:<name>.";
    }
}
