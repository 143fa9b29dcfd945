package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * onnxruntime's fused transformer ops (com.microsoft) as data: which canonical hooks each can hide inside itself.
 * Its transformer optimiser ({@code onnxruntime.transformers.optimizer}, optimum's {@code -O2} and above) writes them
 * and names them without the module path ({@code Attention_0}, {@code SkipLayerNorm_3}); a hook whose tensor such a
 * node swallowed cannot be placed, and is reported with the node that hides it rather than guessed.
 */
final class FusedOps {
    private FusedOps() {
    }

    private static final List<String> ATTENTION_INSIDE = List.of("query_output", "key_output", "value_output",
            "attention_weight");

    /** Op type → the components it can hide (as the tensors between its inputs and outputs). */
    static final Map<String, List<String>> HIDES = Map.ofEntries(
            Map.entry("Attention", ATTENTION_INSIDE),
            Map.entry("MultiHeadAttention", ATTENTION_INSIDE),
            Map.entry("QAttention", ATTENTION_INSIDE),
            Map.entry("PackedAttention", ATTENTION_INSIDE),
            Map.entry("PackedMultiHeadAttention", ATTENTION_INSIDE),
            Map.entry("GroupQueryAttention", ATTENTION_INSIDE),
            // residual add (+ bias) and norm in one: the biased projection output and the residual sum are inside
            Map.entry("SkipLayerNormalization", List.of("attention_output", "mlp_output", "block_input",
                    "block_output", "mlp_input", "attention_input")),
            Map.entry("SkipSimplifiedLayerNormalization", List.of("attention_output", "mlp_output", "block_input",
                    "block_output", "mlp_input", "attention_input")),
            Map.entry("EmbedLayerNormalization", List.of("block_input", "attention_input")),
            // bias + GELU in one: the MLP's first projection output is inside, the activation is the op's output
            Map.entry("FastGelu", List.of("mlp_activation")),
            Map.entry("BiasGelu", List.of("mlp_activation")));

    /** How to get a graph with the hidden tensors back. */
    static final String HOW = "these fused ops come from onnxruntime's transformer optimiser"
            + " (onnxruntime.transformers.optimizer, optimum's -O2 and above); hook the export from before that step"
            + " (torch.onnx.export / optimum-cli export onnx without --optimize), or a graph onnxruntime saved at"
            + " its basic or extended session level, whose fusions keep every hook";

    /** The fused ops present in {@code g} that can hide hooks, by type with their count. */
    static Map<String, Long> present(OnnxGraph g) {
        return g.nodes().stream().filter(FusedOps::isFused)
                .collect(Collectors.groupingBy(NodeProto::getOpType, TreeMap::new, Collectors.counting()));
    }

    static boolean isFused(NodeProto n) {
        return n.getDomain().equals("com.microsoft") && HIDES.containsKey(n.getOpType());
    }

    /** The present ops that can hide {@code component}. */
    static List<String> hiding(OnnxGraph g, String component) {
        return present(g).keySet().stream().filter(op -> HIDES.get(op).contains(component)).toList();
    }

    /** One sentence naming the present fused ops, a node of each and what each can hide; "" when there are none. */
    static String describe(OnnxGraph g) {
        Map<String, String> firstNode = new LinkedHashMap<>();
        for (NodeProto n : g.nodes()) {
            if (isFused(n)) {
                firstNode.putIfAbsent(n.getOpType(), n.getName());
            }
        }
        if (firstNode.isEmpty()) {
            return "";
        }
        String ops = present(g).entrySet().stream().map(e -> "com.microsoft." + e.getKey() + " ×" + e.getValue()
                + " (such as '" + firstNode.get(e.getKey()) + "'; can hide " + HIDES.get(e.getKey()) + ")")
                .collect(Collectors.joining(", "));
        return " The graph holds fused ops " + ops + ": " + HOW + ".";
    }

    /** Components none of whose possible hiders is present: missing for another reason. */
    static List<String> unexplained(OnnxGraph g, List<String> missing) {
        Set<String> hidden = present(g).keySet().stream().flatMap(op -> HIDES.get(op).stream())
                .collect(Collectors.toSet());
        return missing.stream().filter(c -> !hidden.contains(c)).toList();
    }
}
