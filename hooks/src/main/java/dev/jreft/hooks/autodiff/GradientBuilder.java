package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Builds the backward graph of a scalar loss in standard ONNX ops (and onnxruntime's FusedMatMul for transposed
 * products of float activations, see {@link Backward#product}). Nodes are visited in reverse order; each node
 * between a source and the loss applies its op's {@link GradRule}. Sources may be graph inputs, initializers or
 * intermediate tensors (the gradient of an intermediate is the total derivative through everything downstream).
 */
public final class GradientBuilder {
    private GradientBuilder() {
    }

    /**
     * @param forward a graph with static shapes (see {@code ShapeSpecializer}) that computes {@code loss}
     * @param shapes  every tensor's shape, from {@link ShapeProbe}
     */
    public static GradientGraph build(OnnxGraph forward, String loss, List<String> sources, Map<String, long[]> shapes) {
        OnnxGraph g = forward.copy();
        ElemTypes types = new ElemTypes(g);
        for (String s : sources) {
            if (!g.hasTensor(s)) {
                throw new IllegalArgumentException("gradient source '" + s + "' is not a tensor of the graph");
            }
            if (!types.isFloat(s)) {
                throw new IllegalArgumentException("gradient source '" + s + "' is not a float tensor");
            }
        }
        if (!g.hasTensor(loss) || !shapes.containsKey(loss)) {
            throw new IllegalArgumentException("loss tensor '" + loss + "' is not in the graph");
        }
        long lossSize = 1;
        for (long d : shapes.get(loss)) {
            lossSize *= d;
        }
        if (lossSize != 1) {
            throw new IllegalArgumentException("the loss must be a scalar; '" + loss + "' has shape "
                    + java.util.Arrays.toString(shapes.get(loss)));
        }
        List<NodeProto> nodes = List.copyOf(g.nodes());
        // which source each float tensor depends on (for error messages and the differentiable path)
        Map<String, String> origin = new HashMap<>();
        for (String s : sources) {
            origin.put(s, s);
        }
        for (NodeProto n : nodes) {
            String from = null;
            for (String in : n.getInputList()) {
                if (origin.containsKey(in)) {
                    from = origin.get(in);
                    break;
                }
            }
            if (from != null) {
                for (int i = 0; i < n.getOutputCount(); i++) {
                    String o = n.getOutput(i);
                    if (!o.isEmpty() && GradRules.differentiable(n, i, types) && !origin.containsKey(o)) {
                        origin.put(o, from);
                    }
                }
            }
        }
        Set<String> reachesLoss = new HashSet<>();
        reachesLoss.add(loss);
        for (int i = nodes.size() - 1; i >= 0; i--) {
            NodeProto n = nodes.get(i);
            if (n.getOutputList().stream().anyMatch(reachesLoss::contains)) {
                reachesLoss.addAll(n.getInputList());
            }
        }
        Set<String> onPath = new HashSet<>();
        for (String t : origin.keySet()) {
            if (reachesLoss.contains(t)) {
                onPath.add(t);
            }
        }
        Map<String, String> gradOutputs = new LinkedHashMap<>();
        int opset = g.opset();
        g.append("grad", b -> {
            Backward bw = new Backward(b, g, shapes, types, opset, onPath);
            // d loss / d loss = 1
            bw.add(loss, bw.reshape(b.scalar(1.0, bw.dtype(loss)), shapes.get(loss)));
            for (int i = nodes.size() - 1; i >= 0; i--) {
                NodeProto n = nodes.get(i);
                boolean active = false;
                for (String o : n.getOutputList()) {
                    if (onPath.contains(o) && bw.grad(o) != null) {
                        active = true;
                    }
                }
                String input = n.getInputList().stream().filter(onPath::contains).findFirst().orElse(null);
                if (!active || input == null) {
                    continue;
                }
                GradRule rule = GradRules.find(n.getDomain(), n.getOpType());
                if (rule == null) {
                    throw new NoGradientRuleException("no gradient rule for op '" + n.getOpType() + "' (node '"
                            + n.getName() + "', opset " + opset + "): it lies on the differentiable path from"
                            + " source '" + origin.get(input) + "' to loss '" + loss + "' (input '" + input
                            + "'). Ops with rules: " + GradRules.ops());
                }
                rule.apply(n, bw);
            }
            for (String s : sources) {
                String gs = bw.grad(s);
                if (gs == null) {
                    gs = bw.zerosLike(s);
                }
                String out = "grad/" + s;
                b.opTo(out, "Identity", List.of(gs));
                b.expose(out, types.of(s));
                gradOutputs.put(s, out);
            }
        });
        g.exposeOutput(loss, types.of(loss));
        if (g.nodes().stream().anyMatch(n -> GradRules.MICROSOFT.equals(n.getDomain()))) {
            g.importDomain(GradRules.MICROSOFT, 1); // Backward.product's FusedMatMul
        }
        // rules emit some gradients that nothing reads (a constant operand's un-broadcast sum): ORT would run them
        g.removeDeadNodes();
        return new GradientGraph(g, loss, gradOutputs);
    }
}
