package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The linear modules of a graph by Hugging Face module path, and peft-style targeting over them. Exporters name
 * nodes after the module tree, so a MatMul or Gemm that multiplies by a 2-D weight initializer inside
 * {@code /encoder/layer.0/attention/self/query/} is the module {@code encoder.layer.0.attention.self.query}; its
 * input and output are the module's boundary tensors (as for hooks), so a reshape inside the module (GPT-2's
 * Conv1D flattens to 2-D for its Gemm) stays inside it.
 */
public final class ModuleMap {
    /** peft's {@code all-linear} leaves out the output layer; these are its names in HF models. */
    private static final Set<String> OUTPUT_LAYERS = Set.of("lm_head", "embed_out", "classifier", "score",
            "qa_outputs");

    private final Map<String, LinearModule> modules;
    private final OnnxGraph graph;

    private ModuleMap(Map<String, LinearModule> modules, OnnxGraph graph) {
        this.modules = Collections.unmodifiableMap(modules);
        this.graph = graph;
    }

    public static ModuleMap of(OnnxGraph graph) {
        ModuleScope scope = new ModuleScope(graph, new ElemTypes(graph));
        Map<String, LinearModule> found = new LinkedHashMap<>();
        Set<String> duplicated = new java.util.HashSet<>();
        for (NodeProto n : graph.nodes()) {
            Optional<LinearModule> m = linear(scope, n);
            if (m.isEmpty()) {
                continue;
            }
            if (found.containsKey(m.get().path())) {
                duplicated.add(m.get().path()); // two products in one module: not a plain Linear
            } else {
                found.put(m.get().path(), m.get());
            }
        }
        duplicated.forEach(found::remove);
        return new ModuleMap(found, graph);
    }

    /**
     * A MatMul / Gemm by a 2-D float weight initializer inside a named module, as a linear module; or an int8 one:
     * a MatMulInteger by an int8 initializer whose result is cast and scaled (dynamic quantisation), or a MatMul by
     * a DequantizeLinear'd int8 initializer (QDQ).
     */
    private static Optional<LinearModule> linear(ModuleScope s, NodeProto n) {
        OnnxGraph g = s.graph();
        String name = n.getName();
        int slash = name.lastIndexOf('/');
        if (slash <= 0 || n.getInputCount() < 2) {
            return Optional.empty();
        }
        String prefix = name.substring(0, slash + 1);
        String path = name.substring(name.startsWith("/") ? 1 : 0, slash).replace('/', '.');
        Optional<TensorProto> w = s.weight(n.getInput(1));
        if (w.isEmpty() || w.get().getDimsCount() != 2) {
            return Optional.empty();
        }
        int type = w.get().getDataType();
        boolean int8 = ElemTypes.isInt8(type);
        if (!int8 && type != TensorProto.DataType.FLOAT_VALUE) {
            return Optional.empty();
        }
        long d0 = w.get().getDims(0);
        long d1 = w.get().getDims(1);
        String bias = null;
        String scale = null;
        String zeroPoint = null;
        LinearModule.Layout layout;
        long in;
        long out;
        switch (n.getOpType()) {
            case "MatMul" -> {
                layout = LinearModule.Layout.IN_OUT;
                in = d0;
                out = d1;
                if (int8) { // QDQ: the weight is DequantizeLinear(Wq, scale, zero point)
                    NodeProto dq = g.producer(n.getInput(1)).orElseThrow();
                    scale = dq.getInput(1);
                    zeroPoint = dq.getInputCount() > 2 && !dq.getInput(2).isEmpty() ? dq.getInput(2) : null;
                    if (!perOutput(g, scale, out) || OnnxGraph.attrInt(dq, "axis", 1) != 1) {
                        return Optional.empty();
                    }
                }
                bias = biasAdd(s, n.getOutput(0), prefix, out);
            }
            case "MatMulInteger" -> { // y = Cast(MatMulInteger(xq, Wq, x_zero, W_zero)) · (x_scale · W_scale)
                layout = LinearModule.Layout.IN_OUT;
                in = d0;
                out = d1;
                Optional<String[]> scaled = dequantisedProduct(s, n, out);
                if (scaled.isEmpty()) {
                    return Optional.empty();
                }
                scale = scaled.get()[1];
                zeroPoint = n.getInputCount() > 3 && !n.getInput(3).isEmpty() ? n.getInput(3) : null;
                bias = biasAdd(s, scaled.get()[0], prefix, out);
            }
            case "DynamicQuantizeMatMul", "MatMulIntegerToFloat" -> { // onnxruntime's fused int8 products
                if (!int8) {
                    return Optional.empty();
                }
                boolean dynamic = n.getOpType().equals("DynamicQuantizeMatMul");
                layout = LinearModule.Layout.IN_OUT;
                in = d0;
                out = d1;
                scale = n.getInput(dynamic ? 2 : 3);
                int zeroAt = dynamic ? 3 : 5;
                int biasAt = dynamic ? 4 : 6;
                zeroPoint = n.getInputCount() > zeroAt && !n.getInput(zeroAt).isEmpty() ? n.getInput(zeroAt) : null;
                if (!perOutput(g, scale, out)) {
                    return Optional.empty();
                }
                bias = n.getInputCount() > biasAt && !n.getInput(biasAt).isEmpty() ? n.getInput(biasAt)
                        : biasAdd(s, n.getOutput(0), prefix, out);
            }
            case "Gemm" -> {
                boolean plain = !int8 && OnnxGraph.attrInt(n, "transA", 0) == 0
                        && attrFloat(n, "alpha") == 1 && attrFloat(n, "beta") == 1;
                if (!plain) {
                    return Optional.empty();
                }
                boolean transB = OnnxGraph.attrInt(n, "transB", 0) == 1;
                layout = transB ? LinearModule.Layout.OUT_IN : LinearModule.Layout.IN_OUT;
                in = transB ? d1 : d0;
                out = transB ? d0 : d1;
                if (n.getInputCount() > 2 && !n.getInput(2).isEmpty()) {
                    Optional<TensorProto> c = g.initializer(n.getInput(2));
                    if (c.isEmpty() || c.get().getDimsCount() != 1 || c.get().getDims(0) != out) {
                        return Optional.empty(); // a C that is not a bias vector
                    }
                    bias = n.getInput(2);
                } else {
                    bias = biasAdd(s, n.getOutput(0), prefix, out);
                }
            }
            default -> {
                return Optional.empty();
            }
        }
        Optional<String> input = s.input(prefix);
        Optional<String> output = s.output(prefix);
        if (input.isEmpty() || output.isEmpty()) {
            return Optional.empty();
        }
        String weight = int8 ? w.get().getName() : n.getInput(1);
        return Optional.of(new LinearModule(path, name, n.getOpType(), weight, layout, in, out, bias,
                input.get(), output.get(), scale, zeroPoint));
    }

    /**
     * The float product and the weight's scale of a MatMulInteger whose int32 result is cast to float and multiplied
     * by {@code x_scale · W_scale} (onnxruntime's dynamic quantisation); empty for any other use of the product.
     */
    private static Optional<String[]> dequantisedProduct(ModuleScope s, NodeProto n, long out) {
        OnnxGraph g = s.graph();
        List<NodeProto> casts = g.consumers(n.getOutput(0));
        if (casts.size() != 1 || !casts.get(0).getOpType().equals("Cast")) {
            return Optional.empty();
        }
        List<NodeProto> muls = g.consumers(casts.get(0).getOutput(0));
        if (muls.size() != 1 || !muls.get(0).getOpType().equals("Mul")) {
            return Optional.empty();
        }
        NodeProto mul = muls.get(0);
        String scales = mul.getInput(0).equals(casts.get(0).getOutput(0)) ? mul.getInput(1) : mul.getInput(0);
        Optional<NodeProto> product = g.producer(scales).filter(p -> p.getOpType().equals("Mul"));
        if (product.isEmpty()) {
            return Optional.empty();
        }
        for (String factor : product.get().getInputList()) {
            if (g.isInitializer(factor) && perOutput(g, factor, out)) {
                return Optional.of(new String[] {mul.getOutput(0), factor});
            }
        }
        return Optional.empty();
    }

    /** A scale initializer of one value or one per output column. */
    private static boolean perOutput(OnnxGraph g, String scale, long out) {
        Optional<TensorProto> t = g.initializer(scale);
        if (t.isEmpty() || t.get().getDataType() != TensorProto.DataType.FLOAT_VALUE) {
            return false;
        }
        long size = t.get().getDimsList().stream().reduce(1L, (a, b) -> a * b);
        return size == 1 || (t.get().getDimsCount() == 1 && size == out);
    }

    /** The bias of {@code y}: an Add inside the module of {@code y} and a 1-D initializer [out]. */
    private static String biasAdd(ModuleScope s, String y, String prefix, long out) {
        List<NodeProto> consumers = s.graph().consumers(y);
        if (consumers.size() != 1 || !consumers.get(0).getOpType().equals("Add")
                || !ModuleScope.inside(consumers.get(0), prefix)) {
            return null;
        }
        NodeProto add = consumers.get(0);
        String other = add.getInput(0).equals(y) ? add.getInput(1) : add.getInput(0);
        Optional<TensorProto> b = s.graph().initializer(other);
        return b.isPresent() && b.get().getDimsCount() == 1 && b.get().getDims(0) == out ? other : null;
    }

    private static float attrFloat(NodeProto n, String name) {
        return n.getAttributeList().stream().filter(a -> a.getName().equals(name)).findFirst()
                .map(a -> a.getF()).orElse(1f);
    }

    /**
     * The module's frozen weight as torch's Linear holds it, [out, in], whatever the initializer's layout; an int8
     * weight dequantised, (Wq − zero) · scale.
     */
    public INDArray weight(LinearModule m) {
        float[] v = m.quantised() ? dequantised(m) : graph.floats(m.weight());
        return m.layout() == LinearModule.Layout.OUT_IN ? Nd4j.create(v, new long[] {m.out(), m.in()}, 'c')
                : Nd4j.create(v, new long[] {m.in(), m.out()}, 'c').transpose().dup('c');
    }

    /** (Wq − zero) · scale of an int8 weight held [in, out], the scale and zero point one value or one per column. */
    private float[] dequantised(LinearModule m) {
        float[] q = graph.numbers(m.weight());
        float[] scale = graph.floats(m.weightScale());
        float[] zero = m.weightZeroPoint() == null ? new float[] {0} : graph.numbers(m.weightZeroPoint());
        int cols = (int) m.out();
        for (int i = 0; i < q.length; i++) {
            int j = i % cols;
            q[i] = (q[i] - zero[zero.length == 1 ? 0 : j]) * scale[scale.length == 1 ? 0 : j];
        }
        return q;
    }

    /** The module's bias [out], or null when it has none. */
    public INDArray bias(LinearModule m) {
        return m.bias() == null ? null : Nd4j.create(graph.floats(m.bias()), new long[] {m.out()}, 'c');
    }

    /**
     * peft's default {@code target_modules} for a family (its {@code TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING}:
     * the query and value projections); all-linear for a graph of no known family.
     */
    public static Object peftDefaultTargets(String family) {
        return Family.ALL.stream().filter(f -> f.name().equals(family)).findFirst()
                .<Object>map(Family::loraTargets).orElse("all-linear");
    }

    public List<LinearModule> all() {
        return List.copyOf(modules.values());
    }

    public List<String> paths() {
        return List.copyOf(modules.keySet());
    }

    public Optional<LinearModule> get(String path) {
        return Optional.ofNullable(modules.get(path));
    }

    /**
     * The modules a peft {@code target_modules} selects: {@code all-linear} (every linear module but the output
     * layer), a regular expression that must match the whole path (peft's rule for a string), or a list of names,
     * each matching a path exactly or as its dotted suffix ({@code q_proj} matches {@code model.layers.0.self_attn.q_proj}).
     * Selecting nothing is an error listing the candidates.
     */
    public List<LinearModule> select(TargetModules targets) {
        List<LinearModule> picked = new ArrayList<>();
        for (LinearModule m : modules.values()) {
            if (targets.matches(m, this)) {
                picked.add(m);
            }
        }
        if (picked.isEmpty()) {
            throw new UnknownHookException("found " + targets + ", which matches no linear module of this graph;"
                    + " valid: " + describeCandidates());
        }
        return picked;
    }

    boolean isOutputLayer(LinearModule m) {
        return OUTPUT_LAYERS.contains(m.name());
    }

    /** Module names and a few paths, for error messages. */
    public String describeCandidates() {
        if (modules.isEmpty()) {
            return "none (no MatMul or Gemm by a weight initializer inside a named module)";
        }
        List<String> names = modules.values().stream().map(LinearModule::name).distinct().toList();
        List<String> examples = modules.keySet().stream().limit(4).toList();
        return "names " + names + " (as suffixes), full paths such as " + examples + " (" + modules.size()
                + " modules), a regular expression over the paths, or all-linear";
    }

    /** A peft {@code target_modules} value. */
    public sealed interface TargetModules {
        boolean matches(LinearModule m, ModuleMap map);

        /** peft's rule for a string: {@code all-linear}, else a regular expression the whole path must match. */
        static TargetModules parse(String value) {
            if (value.equals("all-linear")) {
                return new AllLinear();
            }
            try {
                return new Regex(Pattern.compile(value));
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("found '" + value + "', which is not a regular"
                        + " expression (" + e.getDescription() + "); valid: all-linear, a regular expression over"
                        + " module paths, or a list of module names");
            }
        }

        static TargetModules names(List<String> names) {
            return new Names(List.copyOf(names));
        }
    }

    record AllLinear() implements TargetModules {
        @Override
        public boolean matches(LinearModule m, ModuleMap map) {
            return !map.isOutputLayer(m);
        }

        @Override
        public String toString() {
            return "'all-linear'";
        }
    }

    record Regex(Pattern pattern) implements TargetModules {
        @Override
        public boolean matches(LinearModule m, ModuleMap map) {
            return pattern.matcher(m.path()).matches();
        }

        @Override
        public String toString() {
            return "'" + pattern.pattern() + "'";
        }
    }

    record Names(List<String> names) implements TargetModules {
        @Override
        public boolean matches(LinearModule m, ModuleMap map) {
            return names.stream().anyMatch(t -> m.path().equals(t) || m.path().endsWith("." + t));
        }

        @Override
        public String toString() {
            return names.toString();
        }
    }
}
