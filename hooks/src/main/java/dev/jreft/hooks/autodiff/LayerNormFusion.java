package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ConstantInts;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Folds the layer norm that older exporters write out op by op (torch at opset &lt; 17:
 * {@code (x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) · γ + β} over the last axis) into one
 * {@code LayerNormalization} node that also outputs its mean and inverse standard deviation, before a graph is
 * differentiated (float graphs). The forward then runs one kernel instead of nine, and the backward reads the saved statistics
 * (one rule instead of the nine ops' rules and their sums). ORT runs {@code LayerNormalization} at any opset (it
 * fuses the same pattern itself for inference); the values agree with the decomposed ops to float rounding.
 */
public final class LayerNormFusion {
    private LayerNormFusion() {
    }

    /**
     * Fuses every complete pattern whose intermediates nothing else reads and none of which is in {@code keep}
     * (gradient sources, graph outputs); returns how many were fused.
     */
    public static int apply(OnnxGraph g, Collection<String> keep) {
        Set<String> kept = new HashSet<>(keep);
        kept.addAll(g.outputNames());
        Map<String, Integer> position = new HashMap<>();
        for (int i = 0; i < g.nodes().size(); i++) {
            for (String o : g.nodes().get(i).getOutputList()) {
                position.put(o, i);
            }
        }
        Set<Integer> removed = new HashSet<>();
        Map<Integer, NodeProto> inserted = new HashMap<>();
        for (NodeProto mean : g.nodes()) {
            Match m = match(g, mean, kept);
            if (m == null || m.nodes().stream().anyMatch(n -> removed.contains(position.get(n.getOutput(0))))) {
                continue;
            }
            String y = m.last().getOutput(0);
            NodeProto fused = NodeProto.newBuilder().setOpType("LayerNormalization")
                    .setName(m.last().getName() + "/jreft.LayerNormalization")
                    .addInput(m.x()).addInput(m.scale()).addInput(m.bias())
                    .addOutput(y).addOutput("jreft.ln/" + y + "/mean").addOutput("jreft.ln/" + y + "/inv_std")
                    .addAttribute(Attr.i("axis", -1).proto()).addAttribute(Attr.f("epsilon", (float) m.epsilon())
                            .proto())
                    .build();
            for (NodeProto n : m.nodes()) {
                removed.add(position.get(n.getOutput(0)));
            }
            inserted.put(position.get(y), fused);
        }
        if (!inserted.isEmpty()) {
            g.replaceNodes(removed, inserted);
        }
        return inserted.size();
    }

    private record Match(String x, String scale, String bias, double epsilon, List<NodeProto> nodes) {
        NodeProto last() {
            return nodes.get(nodes.size() - 1);
        }
    }

    /** The nine nodes from {@code mean = ReduceMean(x)} to {@code + β}, or null when they are not that pattern. */
    private static Match match(OnnxGraph g, NodeProto mean, Set<String> kept) {
        if (!isLastAxisMean(g, mean)) {
            return null;
        }
        String x = mean.getInput(0);
        NodeProto sub = only(g, mean, kept, "Sub");
        if (sub == null || !sub.getInput(0).equals(x)) {
            return null;
        }
        String centred = sub.getOutput(0);
        List<NodeProto> users = g.consumers(centred);
        if (users.size() != 2 || kept.contains(centred)) {
            return null;
        }
        NodeProto square = users.stream().filter(n -> isSquare(g, n, centred)).findFirst().orElse(null);
        NodeProto divide = users.stream().filter(n -> n.getOpType().equals("Div") && n.getInput(0).equals(centred))
                .findFirst().orElse(null);
        if (square == null || divide == null) {
            return null;
        }
        NodeProto variance = only(g, square, kept, "ReduceMean");
        if (variance == null || !isLastAxisMean(g, variance)) {
            return null;
        }
        NodeProto addEps = only(g, variance, kept, "Add");
        Double eps = addEps == null ? null : g.constantScalar(other(addEps, variance.getOutput(0)));
        NodeProto sqrt = eps == null ? null : only(g, addEps, kept, "Sqrt");
        if (sqrt == null || only(g, sqrt, kept, "Div") != divide || !divide.getInput(1).equals(sqrt.getOutput(0))) {
            return null;
        }
        NodeProto scale = only(g, divide, kept, "Mul");
        String gamma = scale == null ? null : other(scale, divide.getOutput(0));
        NodeProto shift = scale == null ? null : only(g, scale, kept, "Add");
        String beta = shift == null ? null : other(shift, scale.getOutput(0));
        // float only: ORT's kernel keeps its statistics in float, and has no double variant that outputs them
        if (shift == null || !isVector(g, gamma) || !isVector(g, beta) || elemType(g, gamma) != ElemTypes.FLOAT) {
            return null;
        }
        return new Match(x, gamma, beta, eps, List.of(mean, sub, square, variance, addEps, sqrt, divide, scale,
                shift));
    }

    /** ReduceMean over the last axis only, keeping it (axes as attribute, or as a constant input from opset 18). */
    private static boolean isLastAxisMean(OnnxGraph g, NodeProto n) {
        if (!n.getOpType().equals("ReduceMean") || OnnxGraph.attrInt(n, "keepdims", 1) != 1) {
            return false;
        }
        List<Long> axes = n.getInputCount() > 1 ? toList(ConstantInts.evaluate(g, n.getInput(1)))
                : OnnxGraph.attrInts(n, "axes");
        return axes != null && axes.equals(List.of(-1L));
    }

    private static List<Long> toList(long[] v) {
        return v == null ? null : java.util.Arrays.stream(v).boxed().toList();
    }

    private static boolean isSquare(OnnxGraph g, NodeProto n, String t) {
        return n.getOpType().equals("Pow") && n.getInput(0).equals(t)
                && Double.valueOf(2).equals(g.constantScalar(n.getInput(1)))
                || n.getOpType().equals("Mul") && n.getInput(0).equals(t) && n.getInput(1).equals(t);
    }

    /** The single consumer of {@code n}'s output if it is an {@code op} and the output is not kept; else null. */
    private static NodeProto only(OnnxGraph g, NodeProto n, Set<String> kept, String op) {
        String out = n.getOutput(0);
        List<NodeProto> users = g.consumers(out);
        if (n.getOutputCount() != 1 || kept.contains(out) || users.size() != 1
                || !users.get(0).getOpType().equals(op)) {
            return null;
        }
        return users.get(0);
    }

    /** The input of a two-input node that is not {@code t}. */
    private static String other(NodeProto n, String t) {
        return n.getInput(0).equals(t) ? n.getInput(1) : n.getInput(0);
    }

    /** The element type of an initializer or graph input. */
    private static int elemType(OnnxGraph g, String t) {
        return g.initializer(t).map(i -> i.getDataType())
                .orElseGet(() -> g.valueInfo(t).orElseThrow().getType().getTensorType().getElemType());
    }

    /** A 1-D initializer or graph input (γ and β of the last axis; inputs when they are trained). */
    private static boolean isVector(OnnxGraph g, String t) {
        if (t == null) {
            return false;
        }
        if (g.isInitializer(t)) {
            return g.initializer(t).map(i -> i.getDimsCount() == 1).orElse(false);
        }
        return g.inputs().stream().anyMatch(v -> v.getName().equals(t) && v.getType().getTensorType().getShape()
                .getDimCount() == 1);
    }
}
