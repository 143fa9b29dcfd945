package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
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
 *
 * <p>Quantisation steps are not boundaries. An int8 export quantises a module's input with a node named after the
 * tensor it quantises ({@code /encoder/layer.0/attention/output/LayerNorm/Add_1_output_0_QuantizeLinear}, so it sits
 * in the module that <em>produced</em> the tensor), and a QDQ export wraps tensors in QuantizeLinear →
 * DequantizeLinear pairs. A quantised (or quantised-and-dequantised) activation therefore stands for the float tensor
 * it quantises ({@link #dataBehind}); a scale, a zero point or a dequantised weight stands for no activation.
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

    /**
     * The last float tensor produced inside {@code prefix} that something outside it reads (or a graph output),
     * directly or through its quantised copies.
     */
    Optional<String> output(String prefix) {
        String found = null;
        Set<String> graphOutputs = Set.copyOf(graph.outputNames());
        for (NodeProto n : graph.nodes()) {
            if (!inside(n, prefix)) {
                continue;
            }
            for (String out : n.getOutputList()) {
                if (out.isEmpty() || !types.isFloat(out) || !dataBehind(out).equals(Optional.of(out))) {
                    continue; // a scale, or a dequantised copy of another tensor
                }
                boolean readOutside = graphOutputs.contains(out)
                        || dataConsumers(out).stream().anyMatch(c -> !inside(c, prefix));
                if (readOutside) {
                    found = out;
                }
            }
        }
        return found != null || exists(prefix) ? Optional.ofNullable(found) : fusedOutput(prefix);
    }

    /**
     * A module that a fused op swallowed (onnxruntime's transformer optimiser names the node {@code SkipLayerNorm_3},
     * not after the module) still has its output when the fused node kept the tensor's name, which exporters derive
     * from the module's path ({@code /encoder/layer.0/output/LayerNorm/Add_1_output_0}): that tensor, if it is the
     * only float one a fused node writes under the module's path; or the graph output a fused node writes from
     * tensors of the enclosing module (the last layer's norm).
     */
    private Optional<String> fusedOutput(String prefix) {
        List<String> named = new ArrayList<>();
        for (NodeProto n : graph.nodes()) {
            if (FusedOps.isFused(n)) {
                for (String out : n.getOutputList()) {
                    if (out.startsWith(prefix) && types.isFloat(out)) {
                        named.add(out);
                    }
                }
            }
        }
        if (named.isEmpty()) { // the model's last norm writes the graph output, named by the exporter's caller
            String parent = parent(prefix);
            Set<String> outputs = Set.copyOf(graph.outputNames());
            for (NodeProto n : graph.nodes()) {
                boolean readsSibling = parent != null && n.getInputList().stream().anyMatch(i -> i.startsWith(parent));
                if (FusedOps.isFused(n) && readsSibling && outputs.contains(n.getOutput(0))) {
                    named.add(n.getOutput(0));
                }
            }
        }
        return named.size() == 1 ? Optional.of(named.get(0)) : Optional.empty();
    }

    /** The head count of a fused attention node ({@code num_heads}), for a graph whose per-head reshapes it hides. */
    Optional<Long> fusedHeads() {
        return graph.nodes().stream().filter(n -> FusedOps.isFused(n) && n.getOpType().contains("Attention"))
                .map(n -> OnnxGraph.attrInt(n, "num_heads", 0)).filter(h -> h > 0).findFirst();
    }

    /** Ops that quantise an activation: output 0 holds its integer copy. */
    private static final Set<String> QUANTISERS = Set.of("DynamicQuantizeLinear", "QuantizeLinear");

    /**
     * The float activation that {@code tensor} holds or quantises: itself for a plain tensor, the quantised float
     * for a quantiser's output 0 or a QDQ pair's dequantised output; empty for a scale or zero point, an
     * initializer or a dequantised weight.
     */
    Optional<String> dataBehind(String tensor) {
        Optional<NodeProto> p = graph.producer(tensor);
        if (p.isEmpty()) {
            return graph.isInitializer(tensor) ? Optional.empty() : Optional.of(tensor);
        }
        NodeProto n = p.get();
        if (QUANTISERS.contains(n.getOpType())) {
            return n.getOutput(0).equals(tensor) ? dataBehind(n.getInput(0)) : Optional.empty();
        }
        if (n.getOpType().equals("DequantizeLinear")) {
            return dataBehind(n.getInput(0));
        }
        return Optional.of(tensor);
    }

    /**
     * The nodes that read {@code tensor}'s values: its consumers, with each quantiser (and the DequantizeLinear of a
     * QDQ pair) replaced by the nodes that read its copy.
     */
    List<NodeProto> dataConsumers(String tensor) {
        List<NodeProto> readers = new ArrayList<>();
        for (NodeProto c : graph.consumers(tensor)) {
            boolean copies = (QUANTISERS.contains(c.getOpType()) || c.getOpType().equals("DequantizeLinear"))
                    && c.getInput(0).equals(tensor);
            if (copies) {
                readers.addAll(dataConsumers(c.getOutput(0)));
            } else {
                readers.add(c);
            }
        }
        return readers;
    }

    /**
     * The first float activation read inside {@code prefix} that is produced outside it and is not a weight; a
     * quantised input counts as the float it quantises. A module a fused op swallowed reads what that op reads: the
     * fused node found by a tensor it writes under an enclosing module's path (onnxruntime's Attention keeps the
     * attention output's name, {@code /encoder/layer.0/attention/self/Reshape_3_output_0}), its first input.
     */
    Optional<String> input(String prefix) {
        if (!exists(prefix)) {
            for (String p = parent(prefix); p != null; p = parent(p)) {
                List<NodeProto> fused = fusedWritingUnder(p);
                if (!fused.isEmpty()) {
                    return fused.size() == 1 && types.isFloat(fused.get(0).getInput(0))
                            ? Optional.of(fused.get(0).getInput(0)) : Optional.empty();
                }
            }
            return Optional.empty();
        }
        return moduleInput(prefix);
    }

    /** {@code /a/b/c/} → {@code /a/b/}; null at the top or above the layer ({@code .../layer.0/}). */
    private static String parent(String prefix) {
        int cut = prefix.lastIndexOf('/', prefix.length() - 2);
        if (cut <= 0 || prefix.substring(0, cut).matches(".*\\.\\d+")) {
            return null; // never above a numbered layer: another layer's fused ops are not this one's
        }
        return prefix.substring(0, cut + 1);
    }

    /** Fused nodes that write a tensor named under {@code prefix}. */
    private List<NodeProto> fusedWritingUnder(String prefix) {
        return graph.nodes().stream().filter(n -> FusedOps.isFused(n)
                && n.getOutputList().stream().anyMatch(o -> o.startsWith(prefix))).toList();
    }

    private Optional<String> moduleInput(String prefix) {
        for (NodeProto n : graph.nodes()) {
            if (!inside(n, prefix)) {
                continue;
            }
            for (String read : n.getInputList()) {
                if (read.isEmpty() || graph.isInitializer(read)) {
                    continue;
                }
                String in = dataBehind(read).orElse(null);
                if (in == null || !types.isFloat(in)) {
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

    /** Ops that multiply by a module's weight. */
    static final Set<String> PRODUCTS = Set.of("Gemm", "MatMul", "MatMulInteger", "DynamicQuantizeMatMul",
            "MatMulIntegerToFloat");

    /** The initializer that {@code tensor} reads: itself, or the integer one a DequantizeLinear (QDQ) expands. */
    Optional<TensorProto> weight(String tensor) {
        Optional<TensorProto> init = graph.initializer(tensor);
        if (init.isPresent()) {
            return init;
        }
        return graph.producer(tensor).filter(p -> p.getOpType().equals("DequantizeLinear"))
                .flatMap(p -> graph.initializer(p.getInput(0)));
    }

    /** The 2-D weight read inside a projection module, as [in, out]; empty when it has none. */
    Optional<long[]> projectionShape(String prefix) {
        for (NodeProto n : nodes(prefix)) {
            boolean gemm = n.getOpType().equals("Gemm");
            if (!PRODUCTS.contains(n.getOpType())) {
                continue;
            }
            for (int i = 0; i < Math.min(2, n.getInputCount()); i++) {
                var init = weight(n.getInput(i));
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

    /** Length of the 1-D weight (a norm's gain) read inside {@code prefix}, or by the fused op that swallowed it. */
    Optional<Long> normWidth(String prefix) {
        for (NodeProto n : exists(prefix) ? nodes(prefix) : fusedWritingUnder(prefix)) {
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
        for (NodeProto c : dataConsumers(tensor)) {
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
