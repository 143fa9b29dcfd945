package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.ConstantInts;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Reads module boundaries from node names. Exporters name nodes after the module tree
 * ({@code /transformer/h.0/attn/c_attn/Gemm}); the float tensor a module hands to the rest of the graph is its
 * output, the float tensor it takes from outside is its input. Hooks are defined at exactly those boundaries.
 */
final class ModuleScope {
    private final OnnxGraph graph;
    private final ElemTypes types;

    ModuleScope(OnnxGraph graph, ElemTypes types) {
        this.graph = graph;
        this.types = types;
    }

    OnnxGraph graph() {
        return graph;
    }

    ElemTypes types() {
        return types;
    }

    static boolean inside(NodeProto n, String prefix) {
        return n.getName().startsWith(prefix);
    }

    boolean exists(String prefix) {
        return graph.nodes().stream().anyMatch(n -> inside(n, prefix));
    }

    List<NodeProto> nodes(String prefix) {
        return graph.nodes().stream().filter(n -> inside(n, prefix)).toList();
    }

    /** The last float tensor produced inside {@code prefix} that something outside it reads (or a graph output). */
    Optional<String> output(String prefix) {
        String found = null;
        Set<String> graphOutputs = Set.copyOf(graph.outputNames());
        for (NodeProto n : graph.nodes()) {
            if (!inside(n, prefix)) {
                continue;
            }
            for (String out : n.getOutputList()) {
                if (out.isEmpty() || !types.isFloat(out)) {
                    continue;
                }
                boolean readOutside = graphOutputs.contains(out)
                        || graph.consumers(out).stream().anyMatch(c -> !inside(c, prefix));
                if (readOutside) {
                    found = out;
                }
            }
        }
        return Optional.ofNullable(found);
    }

    /** The first float tensor read inside {@code prefix} that is produced outside it and is not a weight. */
    Optional<String> input(String prefix) {
        for (NodeProto n : graph.nodes()) {
            if (!inside(n, prefix)) {
                continue;
            }
            for (String in : n.getInputList()) {
                if (in.isEmpty() || graph.isInitializer(in) || !types.isFloat(in)) {
                    continue;
                }
                Optional<NodeProto> p = graph.producer(in);
                boolean fromOutside = p.isEmpty() || !inside(p.get(), prefix);
                if (fromOutside && !(p.isPresent() && p.get().getOpType().equals("Constant"))) {
                    return Optional.of(in);
                }
            }
        }
        return Optional.empty();
    }

    /** Output of the single node of type {@code op} inside {@code prefix}. */
    Optional<String> opOutput(String prefix, String op) {
        List<NodeProto> found = new ArrayList<>();
        for (NodeProto n : nodes(prefix)) {
            if (n.getOpType().equals(op)) {
                found.add(n);
            }
        }
        return found.size() == 1 ? Optional.of(found.get(0).getOutput(0)) : Optional.empty();
    }

    /** The 2-D weight read inside a projection module, as [in, out]; empty when it has none. */
    Optional<long[]> projectionShape(String prefix) {
        for (NodeProto n : nodes(prefix)) {
            boolean gemm = n.getOpType().equals("Gemm");
            if (!gemm && !n.getOpType().equals("MatMul")) {
                continue;
            }
            for (int i = 0; i < n.getInputCount(); i++) {
                var init = graph.initializer(n.getInput(i));
                if (init.isPresent() && init.get().getDimsCount() == 2) {
                    long a = init.get().getDims(0);
                    long b = init.get().getDims(1);
                    boolean transposed = gemm && OnnxGraph.attrInt(n, "transB", 0) == 1;
                    return Optional.of(transposed ? new long[] {b, a} : new long[] {a, b});
                }
            }
        }
        return Optional.empty();
    }

    /** Length of the 1-D weight (a norm's gain) read inside {@code prefix}. */
    Optional<Long> normWidth(String prefix) {
        for (NodeProto n : nodes(prefix)) {
            for (String in : n.getInputList()) {
                var init = graph.initializer(in);
                if (init.isPresent() && init.get().getDimsCount() == 1 && init.get().getDims(0) > 1) {
                    return Optional.of(init.get().getDims(0));
                }
            }
        }
        return Optional.empty();
    }

    /**
     * Splits a [b, s, heads*dh] tensor's width into heads: follows it to the Reshape that makes
     * [b, s, heads, dh] and reads the constant parts of the target shape. Returns {heads, dh}.
     */
    Optional<long[]> headSplit(String tensor, long width) {
        for (NodeProto c : graph.consumers(tensor)) {
            if (!c.getOpType().equals("Reshape")) {
                continue;
            }
            long[] shape = ConstantInts.evaluate(graph, c.getInput(1));
            if (shape == null || shape.length != 4) {
                continue;
            }
            long heads = shape[2];
            long dh = shape[3];
            if (heads <= 0 && dh > 0) {
                heads = width / dh;
            }
            if (dh <= 0 && heads > 0) {
                dh = width / heads;
            }
            if (heads > 0 && dh > 0 && heads * dh == width) {
                return Optional.of(new long[] {heads, dh});
            }
        }
        return Optional.empty();
    }
}
