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
 * Folds op-by-op patterns that older exporters write (torch at opset &lt; 17) into single ops before a graph is
 * differentiated (float graphs). The forward then runs one kernel instead of five or nine, and the backward is one
 * compact rule instead of every op's rule and their gradient sums. ORT runs both fused ops at any opset (it fuses the
 * same patterns itself for inference); values agree with the decomposed ops to float rounding. A pattern is fused
 * only when nothing else reads its intermediates and none of them is kept (a gradient source, a graph output).
 * <ul>
 *   <li>Layer norm {@code (x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) · γ + β} over the last axis becomes a
 *       {@code LayerNormalization} that also outputs its mean and inverse standard deviation, which its rule reads.
 *   <li>GELU {@code x · ½ · (1 + erf(x / √2))} (BERT's exact GELU) becomes ORT's {@code com.microsoft.Gelu}.
 * </ul>
 */
public final class Fusions {
    private Fusions() {
    }

    /** Both fusions; returns how many patterns were fused. */
    public static int apply(OnnxGraph g, Collection<String> keep) {
        return layerNorms(g, keep) + gelus(g, keep);
    }

    /** Fuses every complete layer-norm pattern; returns how many. */
    public static int layerNorms(OnnxGraph g, Collection<String> keep) {
        return fuse(g, keep, Fusions::layerNorm);
    }

    /** Fuses every complete exact-GELU pattern; returns how many. */
    public static int gelus(OnnxGraph g, Collection<String> keep) {
        int n = fuse(g, keep, Fusions::gelu);
        if (n > 0) {
            g.importDomain(GradRules.MICROSOFT, 1);
        }
        return n;
    }

    /**
     * Fuses {@code LayerNormalization(a + b)} over the last axis, a and b of one shape, into onnxruntime's
     * {@code SkipLayerNormalization} (float only). The sum stays a tensor, its output 3 under the Add's name, unless
     * it is kept: a gradient source there would miss the layer norm's part. ORT's own fusion misses these in the
     * specialised graphs, and its LayerNormalization kernel is the slow one: MiniLM's [16, 32, 384] took 0.55 ms, as
     * SkipLayerNormalization 0.11 ms (2 threads; 1.08 and 0.23 ms on one), twelve a forward. The layer norm's mean
     * and inverse std must be unread (the rule recomputes them: ORT's CPU kernel does not write them). Needs every
     * tensor's static shape; returns how many were fused.
     */
    public static int skipLayerNorms(OnnxGraph g, Collection<String> keep, Map<String, long[]> shapes) {
        int n = fuse(g, keep, (graph, ln, kept) -> skipLayerNorm(graph, ln, kept, shapes));
        if (n > 0) {
            g.importDomain(GradRules.MICROSOFT, 1);
        }
        return n;
    }

    private static Match skipLayerNorm(OnnxGraph g, NodeProto ln, Set<String> kept, Map<String, long[]> shapes) {
        if (!ln.getOpType().equals("LayerNormalization") || !ln.getDomain().isEmpty() || ln.getInputCount() < 2) {
            return null;
        }
        String x = ln.getInput(0);
        long[] xs = shapes.get(x);
        NodeProto add = g.producer(x).orElse(null);
        long axis = xs == null ? 0 : OnnxGraph.attrInt(ln, "axis", -1);
        if (xs == null || xs.length != 3 || (axis < 0 ? axis + 3 : axis) != 2 || kept.contains(x) || add == null
                || !add.getOpType().equals("Add") || !add.getDomain().isEmpty() || add.getInputCount() != 2
                || !java.util.Arrays.equals(shapes.get(add.getInput(0)), xs)
                || !java.util.Arrays.equals(shapes.get(add.getInput(1)), xs) || !isFloat(g, x)) {
            return null;
        }
        // the sum is written where the layer norm was: whatever else reads it must come after that
        List<NodeProto> nodes = g.nodes();
        int at = nodes.indexOf(ln);
        if (g.consumers(x).stream().anyMatch(c -> !c.equals(ln) && nodes.indexOf(c) < at)) {
            return null;
        }
        for (int i = 1; i < ln.getOutputCount(); i++) { // mean, inverse std: unread
            String o = ln.getOutput(i);
            if (!o.isEmpty() && (kept.contains(o) || !g.consumers(o).isEmpty())) {
                return null;
            }
        }
        NodeProto.Builder fused = NodeProto.newBuilder().setOpType("SkipLayerNormalization")
                .setDomain(GradRules.MICROSOFT).setName(ln.getName() + "/jreft.SkipLayerNormalization")
                .addInput(add.getInput(0)).addInput(add.getInput(1)).addInput(ln.getInput(1))
                .addInput(ln.getInputCount() > 2 ? ln.getInput(2) : "")
                .addOutput(ln.getOutput(0)).addOutput("").addOutput("").addOutput(x);
        // ONNX's default ε is 1e-5, ORT's SkipLayerNormalization's 1e-12: always written
        float eps = ln.getAttributeList().stream().filter(a -> a.getName().equals("epsilon")).findFirst()
                .map(a -> a.getF()).orElse(1e-5f);
        fused.addAttribute(Attr.f("epsilon", eps).proto());
        return new Match(List.of(add, ln), fused.build());
    }

    /** A matched pattern: its nodes (the last writes the output) and the one node that replaces them. */
    private record Match(List<NodeProto> nodes, NodeProto fused) {
    }

    private interface Matcher {
        Match at(OnnxGraph g, NodeProto first, Set<String> kept);
    }

    private static int fuse(OnnxGraph g, Collection<String> keep, Matcher matcher) {
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
        for (NodeProto first : g.nodes()) {
            Match m = matcher.at(g, first, kept);
            if (m == null || m.nodes().stream().anyMatch(n -> removed.contains(position.get(n.getOutput(0))))) {
                continue;
            }
            for (NodeProto n : m.nodes()) {
                removed.add(position.get(n.getOutput(0)));
            }
            // at the last node's place: every input of the pattern is produced before it
            inserted.put(position.get(m.nodes().get(m.nodes().size() - 1).getOutput(0)), m.fused());
        }
        if (!inserted.isEmpty()) {
            g.replaceNodes(removed, inserted);
        }
        return inserted.size();
    }

    /** The nine nodes from {@code mean = ReduceMean(x)} to {@code + β}, or null when they are not that pattern. */
    private static Match layerNorm(OnnxGraph g, NodeProto mean, Set<String> kept) {
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
        String y = shift.getOutput(0);
        NodeProto fused = NodeProto.newBuilder().setOpType("LayerNormalization")
                .setName(shift.getName() + "/jreft.LayerNormalization")
                .addInput(x).addInput(gamma).addInput(beta)
                .addOutput(y).addOutput("jreft.ln/" + y + "/mean").addOutput("jreft.ln/" + y + "/inv_std")
                .addAttribute(Attr.i("axis", -1).proto()).addAttribute(Attr.f("epsilon", eps.floatValue()).proto())
                .build();
        return new Match(List.of(mean, sub, square, variance, addEps, sqrt, divide, scale, shift), fused);
    }

    /**
     * The five nodes of {@code x · ½ · (1 + erf(x / √2))} from the Erf, in either of torch's orders
     * ({@code (x · ½) · (1 + erf)} or {@code (x · (1 + erf)) · ½}), or null when they are not that pattern.
     */
    private static Match gelu(OnnxGraph g, NodeProto erf, Set<String> kept) {
        if (!erf.getOpType().equals("Erf")) {
            return null;
        }
        NodeProto scaled = g.producer(erf.getInput(0)).orElse(null);
        if (scaled == null || kept.contains(erf.getInput(0)) || g.consumers(erf.getInput(0)).size() != 1) {
            return null;
        }
        String x = scaled.getInput(0);
        Double c = scaled.getInputCount() == 2 ? g.constantScalar(scaled.getInput(1)) : null;
        boolean overRoot2 = c != null && (scaled.getOpType().equals("Div") && Math.abs(c - Math.sqrt(2)) < 1e-6
                || scaled.getOpType().equals("Mul") && Math.abs(c - 1 / Math.sqrt(2)) < 1e-6);
        NodeProto plusOne = overRoot2 ? only(g, erf, kept, "Add") : null;
        if (plusOne == null || !Double.valueOf(1).equals(g.constantScalar(other(plusOne, erf.getOutput(0))))
                || !isFloat(g, x)) {
            return null;
        }
        NodeProto product = only(g, plusOne, kept, "Mul");
        if (product == null) {
            return null;
        }
        String factor = other(product, plusOne.getOutput(0));
        List<NodeProto> nodes;
        NodeProto last;
        NodeProto half = g.producer(factor).orElse(null);
        if (factor.equals(x)) { // (x · (1 + erf)) · ½
            last = only(g, product, kept, "Mul");
            if (last == null || !isHalf(g, other(last, product.getOutput(0)))) {
                return null;
            }
            nodes = List.of(scaled, erf, plusOne, product, last);
        } else if (half != null && half.getOpType().equals("Mul") && !kept.contains(factor)
                && g.consumers(factor).size() == 1 && (half.getInput(0).equals(x) && isHalf(g, half.getInput(1))
                || half.getInput(1).equals(x) && isHalf(g, half.getInput(0)))) { // (x · ½) · (1 + erf)
            last = product;
            nodes = List.of(half, scaled, erf, plusOne, product);
        } else {
            return null;
        }
        NodeProto fused = NodeProto.newBuilder().setOpType("Gelu").setDomain(GradRules.MICROSOFT)
                .setName(last.getName() + "/jreft.Gelu").addInput(x).addOutput(last.getOutput(0)).build();
        return new Match(nodes, fused);
    }

    private static boolean isHalf(OnnxGraph g, String t) {
        return Double.valueOf(0.5).equals(g.constantScalar(t));
    }

    /** Whether {@code t} is float, as far as the graph declares it (an input or value info; unknown counts). */
    private static boolean isFloat(OnnxGraph g, String t) {
        return g.valueInfo(t).map(v -> v.getType().getTensorType().getElemType() == ElemTypes.FLOAT).orElse(
                !g.isInitializer(t) || g.initializer(t).get().getDataType() == ElemTypes.FLOAT);
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
