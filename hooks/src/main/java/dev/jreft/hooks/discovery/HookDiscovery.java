package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.stream.Collectors;

/**
 * Finds the family of an exported transformer and maps every canonical hook to its tensor: the family's layers are
 * the numbered modules holding its signature module, and each hook is placed in each layer by the family's table
 * ({@link Family}); all twelve must be found in every layer.
 */
public final class HookDiscovery {
    private HookDiscovery() {
    }

    public static HookMap discover(OnnxGraph graph) {
        ModuleScope scope = new ModuleScope(graph, new ElemTypes(graph));
        for (Family f : Family.ALL) {
            Optional<HookMap> m = detect(f, scope);
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

    /** Empty when the graph shows no sign of the family; an error when it does but a hook cannot be placed. */
    static Optional<HookMap> detect(Family family, ModuleScope s) {
        TreeMap<Integer, String> layers = new TreeMap<>();
        for (NodeProto n : s.graph().nodes()) {
            Matcher m = family.layerPattern().matcher(n.getName());
            if (m.find()) {
                layers.put(Integer.parseInt(m.group(2)), m.group(1) + m.group(2) + "/");
            }
        }
        if (layers.isEmpty()) {
            return Optional.empty();
        }
        if (layers.firstKey() != 0 || layers.lastKey() != layers.size() - 1) {
            throw new DetectionException("recognised " + family.name() + " layers " + layers.keySet()
                    + " but they are not numbered 0.." + (layers.size() - 1));
        }
        List<HookPoint> hooks = new ArrayList<>();
        Map<String, String> hidden = new java.util.LinkedHashMap<>();
        ModelConfig config = null;
        for (var e : layers.entrySet()) {
            Map<String, Optional<String>> found = family.components(s, e.getValue());
            List<String> missing = new ArrayList<>();
            Map<String, String> tensors = new TreeMap<>();
            Map<String, String> hiddenHere = new TreeMap<>();
            for (String c : HookMap.COMPONENTS) {
                Optional<String> t = found.getOrDefault(c, Optional.empty());
                Optional<String> preBias = t.flatMap(x -> withoutItsBias(s, x, c));
                if (preBias.isPresent()) { // the tensor is there, but without the bias the fused op adds: not c
                    hiddenHere.put(c, preBias.get());
                } else if (t.isPresent()) {
                    tensors.put(c, t.get());
                } else {
                    missing.add(c);
                }
            }
            List<String> unexplained = FusedOps.unexplained(s.graph(), missing);
            if (!unexplained.isEmpty()) {
                throw new DetectionException("recognised a " + family.name() + " graph (" + layers.size()
                        + " layers under '" + e.getValue() + "') but could not place " + missing + " of layer "
                        + e.getKey() + "; found " + tensors.keySet()
                        + ". Use raw tensor names (tensor:<name>) for this export." + FusedOps.describe(s.graph()));
            }
            for (String c : missing) {
                hiddenHere.put(c, "inside a fused " + FusedOps.hiding(s.graph(), c).stream().map(op ->
                        "com.microsoft." + op).collect(Collectors.joining(" or ")) + " node of layer " + e.getKey());
            }
            if (config == null) {
                config = family.config(s, e.getValue(), tensors, layers.size());
            }
            for (String c : HookMap.COMPONENTS) {
                String name = "blocks." + e.getKey() + "." + c;
                if (hiddenHere.containsKey(c)) {
                    hidden.put(name, hiddenHere.get(c));
                } else {
                    hooks.add(new HookPoint(name, tensors.get(c), e.getKey(), c, layout(c, config)));
                }
            }
        }
        return Optional.of(new HookMap(config, hooks, s.graph(), hidden));
    }

    /**
     * Why {@code tensor} is not {@code component} when a fused op reads it as the part before the bias it adds
     * (SkipLayerNormalization with a bias: the projection's bias moved into the norm, so the module's last tensor is
     * its output less the bias); empty when it is the component's.
     */
    private static Optional<String> withoutItsBias(ModuleScope s, String tensor, String component) {
        if (!component.equals("attention_output") && !component.equals("mlp_output")) {
            return Optional.empty();
        }
        for (NodeProto c : s.dataConsumers(tensor)) {
            boolean biased = c.getOpType().startsWith("Skip") && FusedOps.isFused(c) && c.getInputCount() > 4
                    && !c.getInput(4).isEmpty() && (c.getInput(0).equals(tensor) || c.getInput(1).equals(tensor));
            if (biased) {
                return Optional.of("inside the fused com.microsoft." + c.getOpType() + " node '" + c.getName()
                        + "' (its bias is added there; '" + tensor + "' lacks it)");
            }
        }
        return Optional.empty();
    }

    /** How a component's tensor reads: per-head projections, attention probabilities, MLP width, residual. */
    static HookLayout layout(String component, ModelConfig c) {
        return switch (component) {
            case "query_output", "attention_value_output" -> HookLayout.heads(c.heads(), c.headDim());
            case "key_output", "value_output" -> HookLayout.heads(c.kvHeads(), c.headDim());
            case "attention_weight" -> new HookLayout(HookLayout.Kind.ATTENTION_PATTERN, -1, c.heads(), 0);
            case "mlp_activation" -> new HookLayout(HookLayout.Kind.MLP, c.mlpWidth(), 0, 0);
            default -> HookLayout.residual(c.hidden());
        };
    }

    private static String describeUnrecognised(OnnxGraph graph) {
        Map<String, Long> ops = graph.nodes().stream()
                .collect(Collectors.groupingBy(NodeProto::getOpType, TreeMap::new, Collectors.counting()));
        List<String> prefixes = graph.nodes().stream().map(NodeProto::getName)
                .map(n -> n.lastIndexOf('/') > 0 ? n.substring(0, n.lastIndexOf('/') + 1) : n)
                .distinct().limit(8).toList();
        String families = Family.ALL.stream().map(f -> f.name() + " (" + f.signature() + ")")
                .collect(Collectors.joining(", "));
        return "could not recognise the model family of " + graph.origin() + ": no node names like " + families
                + ". Found " + graph.nodes().size() + " nodes, inputs " + graph.inputNames() + ", outputs "
                + graph.outputNames() + ", ops " + ops + ", first name prefixes " + prefixes
                + ". Raw tensors still work as hooks: tensor:<name>." + FusedOps.describe(graph);
    }
}
