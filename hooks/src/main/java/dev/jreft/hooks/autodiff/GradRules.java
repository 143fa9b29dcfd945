package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One gradient rule per op (the default ONNX domain, and the {@code com.microsoft} ops jreft itself fuses into
 * graphs before differentiating them). Notation: x̄ is d loss / d x, g the output's gradient, y the
 * output. Every rule emits standard ONNX ops only; stop-gradient edges (shape and index inputs, Where's condition,
 * Pow's exponent) simply get no contribution.
 */
public final class GradRules {
    private static final Map<String, GradRule> RULES = new TreeMap<>();
    /** ORT's contrib domain: only ops {@link Fusions} writes. */
    public static final String MICROSOFT = "com.microsoft";
    private static final Map<String, GradRule> MICROSOFT_RULES = new TreeMap<>();

    private GradRules() {
    }

    public static GradRule find(String domain, String op) {
        if (domain.equals(MICROSOFT)) {
            return MICROSOFT_RULES.get(op);
        }
        return domain.isEmpty() || domain.equals("ai.onnx") ? RULES.get(op) : null;
    }

    public static List<String> ops() {
        List<String> ops = new ArrayList<>(RULES.keySet());
        MICROSOFT_RULES.keySet().forEach(op -> ops.add(MICROSOFT + "." + op));
        return ops;
    }

    private static void rule(String op, GradRule r) {
        RULES.put(op, r);
    }

    /**
     * Ā = g Bᵀ, B̄ = Aᵀ g, un-broadcast over batch axes, for the node's inputs A and B; the products read the values
     * {@code aValue} and {@code bValue} give (the inputs themselves, or float copies of integer ones), asked for only
     * when the other operand's gradient needs them.
     */
    private static void matMul(NodeProto n, Backward bw, java.util.function.Supplier<String> aValue,
                               java.util.function.Supplier<String> bValue) {
        String a = in(n, 0);
        String b = in(n, 1);
        long[] as = bw.shape(a);
        long[] bs = bw.shape(b);
        long[] ys = bw.shape(y(n));
        if (as.length < 2 || bs.length < 2) {
            throw new NoGradientRuleException(n.getOpType() + " node '" + n.getName() + "' has a 1-D operand; only"
                    + " operands of rank >= 2 are supported");
        }
        String g = bw.grad(n, 0);
        if (bw.wants(a)) {
            long[] s = Arrays.copyOf(ys, ys.length);
            s[s.length - 1] = as[as.length - 1];
            bw.add(a, bw.unbroadcast(bw.product(g, false, bValue.get(), true, bs.length, y(n)), s, a));
        }
        if (bw.wants(b) && bs.length == 2 && as.length > 2) {
            // a weight [k, n] under a batch of rows: B̄ = A'ᵀ g' over the rows flattened to [m, k] and [m, n], one
            // product instead of a batched one and a sum over its [.., k, n] copies (full finetuning: 16 of them)
            long rows = 1;
            for (int i = 0; i < as.length - 1; i++) {
                rows *= as[i];
            }
            String a2 = bw.reshape(aValue.get(), new long[] {rows, as[as.length - 1]});
            String g2 = bw.reshape(g, new long[] {rows, ys[ys.length - 1]});
            bw.add(b, bw.product(a2, true, g2, false, 2, y(n)));
        } else if (bw.wants(b)) {
            long[] s = Arrays.copyOf(ys, ys.length);
            s[s.length - 2] = bs[bs.length - 2];
            bw.add(b, bw.unbroadcast(bw.product(aValue.get(), true, g, false, as.length, y(n)), s, b));
        }
    }

    /** y = saturate(round(x / s) + z): x̄ = ȳ / s where x / s + z lies in the integer range, else 0 (STE). */
    private static void quantizeLinear(NodeProto n, Backward bw) {
        String x = in(n, 0);
        String s = perAxis(n, bw, in(n, 1), x);
        String zero = in(n, 2);
        int type = zero.isEmpty() ? ElemTypes.UINT8 : bw.dtype(zero);
        boolean signed = type == ai.onnx.proto.OnnxMl.TensorProto.DataType.INT8_VALUE;
        String q = bw.op("Round", bw.op("Div", x, s));
        if (!zero.isEmpty()) {
            q = bw.op("Add", q, bw.op("Cast", List.of(perAxis(n, bw, zero, x)), Attr.i("to", bw.dtype(x))));
        }
        // Not(q < lo or q > hi): GreaterOrEqual needs opset 12, int8 exports are often opset 11
        String outside = bw.op("Or", bw.op("Less", q, bw.scalar(signed ? -128 : 0, x)),
                bw.op("Greater", q, bw.scalar(signed ? 127 : 255, x)));
        String inRange = bw.op("Cast", List.of(bw.op("Not", outside)), Attr.i("to", bw.dtype(x)));
        bw.add(x, bw.op("Mul", bw.op("Div", bw.grad(n, 0), s), inRange));
    }

    /**
     * g · d gelu(x) / dx = g · (Φ(x) + x·φ(x)) (the exact, erf form), as ½ g (1 + erf(u) + √(2/π) x / exp(u²)) with
     * u = x/√2: ten ops over the activation, one fewer than the textbook form, and no Neg (exp(u²) overflowing to
     * infinity takes x / exp(u²) to its limit 0).
     */
    private static String geluGrad(Backward bw, String g, String x) {
        String u = bw.op("Mul", x, bw.scalar(1 / Math.sqrt(2), x));
        String slope2 = bw.op("Add", bw.op("Add", bw.op("Erf", u), bw.scalar(1, x)), bw.op("Mul",
                bw.op("Div", x, bw.op("Exp", bw.op("Mul", u, u))), bw.scalar(Math.sqrt(2 / Math.PI), x)));
        return bw.op("Mul", bw.op("Mul", g, slope2), bw.scalar(0.5, x));
    }

    /** Y = α · A' B' with A' = Aᵀ when transA (last two axes), B' likewise: Ā' = α g B'ᵀ, B̄' = α A'ᵀ g. */
    private static void fusedMatMul(NodeProto n, Backward bw) {
        String a = in(n, 0);
        String b = in(n, 1);
        int rank = bw.shape(a).length;
        if (rank != bw.shape(b).length || rank < 2 || OnnxGraph.attrInt(n, "transBatchA", 0) != 0
                || OnnxGraph.attrInt(n, "transBatchB", 0) != 0) {
            throw new NoGradientRuleException("FusedMatMul node '" + n.getName() + "': only operands of one rank"
                    + " (>= 2) without transBatchA / transBatchB have a gradient rule");
        }
        boolean ta = OnnxGraph.attrInt(n, "transA", 0) == 1;
        boolean tb = OnnxGraph.attrInt(n, "transB", 0) == 1;
        double alpha = floatAttr(n, "alpha", 1);
        String g = alpha == 1 ? bw.grad(n, 0) : bw.op("Mul", bw.grad(n, 0), bw.scalar(alpha, y(n)));
        String a1 = ta ? bw.transposeLast2(a, rank) : a;
        String b1 = tb ? bw.transposeLast2(b, rank) : b;
        if (bw.wants(a)) {
            String da = bw.op("MatMul", g, bw.transposeLast2(b1, rank));
            bw.add(a, ta ? bw.transposeLast2(da, rank) : da);
        }
        if (bw.wants(b)) {
            String db = bw.op("MatMul", bw.transposeLast2(a1, rank), g);
            bw.add(b, tb ? bw.transposeLast2(db, rank) : db);
        }
    }

    /**
     * Ā of {@code Y = a_s · ((A − a_z) B̃) ⊙ b_s + bias} with {@code B̃ = B − b_z} (an int8 weight [K, N], its scale
     * and zero point one value or one per column): {@code Ā = a_s · (Ȳ ⊙ b_s) B̃ᵀ}; {@code aScale} null for a float A.
     */
    private static void scaledProduct(NodeProto n, Backward bw, String aScale, String bScale, String bZero) {
        String a = in(n, 0);
        if (!bw.wants(a)) {
            return;
        }
        String g = bw.op("Mul", bw.grad(n, 0), bScale);
        if (aScale != null && !aScale.isEmpty()) {
            g = bw.op("Mul", g, aScale);
        }
        String b = centred(bw, in(n, 1), bZero == null ? "" : bZero, false);
        bw.add(a, bw.op("MatMul", g, bw.transposeLast2(b, 2)));
    }

    /**
     * A quantisation parameter of {@code n} laid out to broadcast against {@code x}: as it is when it is one value,
     * else its [C] values along the node's {@code axis} (default 1).
     */
    private static String perAxis(NodeProto n, Backward bw, String parameter, String x) {
        long[] ps = bw.shape(parameter);
        long size = Arrays.stream(ps).reduce(1, (p, q) -> p * q);
        if (size == 1) {
            return parameter;
        }
        int rank = bw.shape(x).length;
        long axis = norm(OnnxGraph.attrInt(n, "axis", 1), rank);
        long[] shape = new long[rank];
        Arrays.fill(shape, 1);
        shape[(int) axis] = size;
        return bw.reshape(parameter, shape);
    }

    /**
     * An integer MatMulInteger operand minus its zero point, in float: the zero point is one value, or one per row
     * of A ({@code rows}, [M] → [M, 1]) or per column of B ([N], which broadcasts as it is).
     */
    private static String centred(Backward bw, String v, String zero, boolean rows) {
        String f = bw.op("Cast", List.of(v), Attr.i("to", ElemTypes.FLOAT));
        if (zero.isEmpty()) {
            return f;
        }
        String z = bw.op("Cast", List.of(zero), Attr.i("to", ElemTypes.FLOAT));
        long size = Arrays.stream(bw.shape(zero)).reduce(1, (p, q) -> p * q);
        if (rows && size > 1) {
            z = bw.reshape(z, new long[] {size, 1});
        }
        return bw.op("Sub", f, z);
    }

    /**
     * Whether output {@code i} of {@code n} carries a gradient: a float output does, but for a dynamic quantiser's
     * scale (the straight-through estimator holds it constant); so does the integer copy a quantisation step makes of
     * a float tensor (a quantiser's output, MatMulInteger's product).
     */
    public static boolean differentiable(NodeProto n, int i, ElemTypes types) {
        String op = n.getOpType();
        boolean domain = n.getDomain().isEmpty() || n.getDomain().equals("ai.onnx");
        if (domain && op.equals("DynamicQuantizeLinear")) {
            return i == 0;
        }
        if (domain && i == 0 && (op.equals("QuantizeLinear") || op.equals("MatMulInteger"))) {
            return true;
        }
        return types.isFloat(n.getOutput(i));
    }

    private static String in(NodeProto n, int i) {
        return i < n.getInputCount() ? n.getInput(i) : "";
    }

    private static String y(NodeProto n) {
        return n.getOutput(0);
    }

    static {
        // ---- elementwise, with un-broadcasting
        rule("Add", (n, bw) -> {
            String g = bw.grad(n, 0);
            long[] ys = bw.shape(y(n));
            for (int i = 0; i < 2; i++) {
                if (bw.wants(in(n, i))) {
                    bw.add(in(n, i), bw.unbroadcast(g, ys, in(n, i)));
                }
            }
        });
        rule("Sub", (n, bw) -> {
            String g = bw.grad(n, 0);
            long[] ys = bw.shape(y(n));
            bw.add(in(n, 0), bw.unbroadcast(g, ys, in(n, 0)));
            if (bw.wants(in(n, 1))) {
                bw.add(in(n, 1), bw.unbroadcast(bw.op("Neg", g), ys, in(n, 1)));
            }
        });
        rule("Mul", (n, bw) -> {
            String g = bw.grad(n, 0);
            long[] ys = bw.shape(y(n));
            if (bw.wants(in(n, 0))) {
                bw.add(in(n, 0), bw.unbroadcast(bw.op("Mul", g, in(n, 1)), ys, in(n, 0)));
            }
            if (bw.wants(in(n, 1))) {
                bw.add(in(n, 1), bw.unbroadcast(bw.op("Mul", g, in(n, 0)), ys, in(n, 1)));
            }
        });
        rule("Div", (n, bw) -> { // y = a / b: ā = g / b, b̄ = −g·y / b
            String g = bw.grad(n, 0);
            long[] ys = bw.shape(y(n));
            if (bw.wants(in(n, 0))) {
                bw.add(in(n, 0), bw.unbroadcast(bw.op("Div", g, in(n, 1)), ys, in(n, 0)));
            }
            if (bw.wants(in(n, 1))) {
                String t = bw.op("Neg", bw.op("Mul", g, bw.op("Div", y(n), in(n, 1))));
                bw.add(in(n, 1), bw.unbroadcast(t, ys, in(n, 1)));
            }
        });
        rule("Pow", (n, bw) -> { // y = a^c, c constant: ā = g·c·a^(c−1)
            if (bw.wants(in(n, 1))) {
                throw new NoGradientRuleException("Pow node '" + n.getName() + "' has a differentiable exponent;"
                        + " only constant exponents are supported");
            }
            String c = in(n, 1);
            Double known = bw.constantScalar(c);
            String d;
            if (known != null && known == 2) { // LayerNorm's variance: 2a, one Mul instead of ORT's slow general Pow
                d = bw.op("Mul", in(n, 0), bw.scalar(2, in(n, 0)));
            } else {
                String cMinus1 = bw.op("Sub", c, bw.scalar(1, c));
                d = bw.op("Mul", bw.op("Cast", List.of(c), Attr.i("to", bw.dtype(in(n, 0)))),
                        bw.op("Pow", in(n, 0), cMinus1));
            }
            bw.add(in(n, 0), bw.unbroadcast(bw.op("Mul", bw.grad(n, 0), d), bw.shape(y(n)), in(n, 0)));
        });
        rule("Neg", (n, bw) -> bw.add(in(n, 0), bw.op("Neg", bw.grad(n, 0))));
        rule("Sqrt", (n, bw) -> bw.add(in(n, 0), bw.op("Div", bw.grad(n, 0),
                bw.op("Mul", bw.scalar(2, y(n)), y(n)))));
        rule("Reciprocal", (n, bw) -> bw.add(in(n, 0), bw.op("Neg", bw.op("Mul", bw.grad(n, 0),
                bw.op("Mul", y(n), y(n))))));
        rule("Exp", (n, bw) -> bw.add(in(n, 0), bw.op("Mul", bw.grad(n, 0), y(n))));
        rule("Log", (n, bw) -> bw.add(in(n, 0), bw.op("Div", bw.grad(n, 0), in(n, 0))));
        rule("Tanh", (n, bw) -> bw.add(in(n, 0), bw.op("Mul", bw.grad(n, 0),
                bw.op("Sub", bw.scalar(1, y(n)), bw.op("Mul", y(n), y(n))))));
        rule("Sigmoid", (n, bw) -> bw.add(in(n, 0), bw.op("Mul", bw.grad(n, 0),
                bw.op("Mul", y(n), bw.op("Sub", bw.scalar(1, y(n)), y(n))))));
        rule("Relu", (n, bw) -> bw.add(in(n, 0), bw.op("Mul", bw.grad(n, 0), bw.op("Cast",
                List.of(bw.op("Greater", in(n, 0), bw.scalar(0, in(n, 0)))), Attr.i("to", bw.dtype(in(n, 0)))))));
        rule("Erf", (n, bw) -> { // d erf(a) = 2/√π · exp(−a²)
            String a = in(n, 0);
            String e = bw.op("Exp", bw.op("Neg", bw.op("Mul", a, a)));
            bw.add(a, bw.op("Mul", bw.grad(n, 0), bw.op("Mul", bw.scalar(2 / Math.sqrt(Math.PI), a), e)));
        });
        // y = x·Φ(x) (exact, erf form): x̄ = g·(Φ(x) + x·φ(x)), Φ(x) = (1 + erf(x/√2))/2, φ(x) = exp(−x²/2)/√(2π)
        MICROSOFT_RULES.put("Gelu", (n, bw) -> bw.add(in(n, 0), geluGrad(bw, bw.grad(n, 0), in(n, 0))));
        // onnxruntime's optimiser: BiasGelu y = gelu(x + b), FusedMatMul y = α · op(A) op(B) (attention scores)
        MICROSOFT_RULES.put("BiasGelu", (n, bw) -> {
            String x = in(n, 0);
            String z = bw.op("Add", x, in(n, 1));
            String gz = geluGrad(bw, bw.grad(n, 0), z);
            bw.add(x, bw.unbroadcast(gz, bw.shape(y(n)), x));
            bw.add(in(n, 1), bw.unbroadcast(gz, bw.shape(y(n)), in(n, 1)));
        });
        MICROSOFT_RULES.put("FusedMatMul", GradRules::fusedMatMul);
        // FastGelu y = ½z(1 + tanh(c(z + 0.044715 z³))), z = x (+ bias), c = √(2/π):
        // dy/dz = ½(1 + t) + ½z(1 − t²) · c(1 + 3 · 0.044715 z²)
        MICROSOFT_RULES.put("FastGelu", (n, bw) -> {
            String x = in(n, 0);
            boolean biased = !in(n, 1).isEmpty();
            String z = biased ? bw.op("Add", x, in(n, 1)) : x;
            double c = Math.sqrt(2 / Math.PI);
            String z2 = bw.op("Mul", z, z);
            String inner = bw.op("Mul", bw.scalar(c, z), bw.op("Add", z, bw.op("Mul", bw.scalar(0.044715, z),
                    bw.op("Mul", z2, z))));
            String t = bw.op("Tanh", inner);
            String half = bw.scalar(0.5, z);
            String first = bw.op("Mul", half, bw.op("Add", bw.scalar(1, z), t));
            String slope = bw.op("Mul", bw.scalar(c, z), bw.op("Add", bw.scalar(1, z), bw.op("Mul",
                    bw.scalar(3 * 0.044715, z), z2)));
            String second = bw.op("Mul", bw.op("Mul", half, z), bw.op("Mul", bw.op("Sub", bw.scalar(1, z),
                    bw.op("Mul", t, t)), slope));
            String gz = bw.op("Mul", bw.grad(n, 0), bw.op("Add", first, second));
            bw.add(x, bw.unbroadcast(gz, bw.shape(y(n)), x));
            if (biased) {
                bw.add(in(n, 1), bw.unbroadcast(gz, bw.shape(y(n)), in(n, 1)));
            }
        });
        rule("Identity", (n, bw) -> bw.add(in(n, 0), bw.grad(n, 0)));
        // an integer input is a quantised copy of a float (straight through): its gradient stays real-valued
        rule("Cast", (n, bw) -> bw.add(in(n, 0), bw.isFloat(in(n, 0)) ? bw.op("Cast", List.of(bw.grad(n, 0)),
                Attr.i("to", bw.dtype(in(n, 0)))) : bw.grad(n, 0)));
        rule("Where", (n, bw) -> { // condition gets none
            String g = bw.grad(n, 0);
            long[] ys = bw.shape(y(n));
            String zero = bw.scalar(0, y(n));
            if (bw.wants(in(n, 1))) {
                bw.add(in(n, 1), bw.unbroadcast(bw.op("Where", in(n, 0), g, zero), ys, in(n, 1)));
            }
            if (bw.wants(in(n, 2))) {
                bw.add(in(n, 2), bw.unbroadcast(bw.op("Where", in(n, 0), zero, g), ys, in(n, 2)));
            }
        });

        rule("Max", GradRules::select); // x̄ᵢ = g · [xᵢ == y], un-broadcast (ties: each tied input gets g)
        rule("Min", GradRules::select);
        rule("Clip", (n, bw) -> { // x̄ = g · [lo < x < hi]; an absent bound is unbounded; bounds get none
            String x = in(n, 0);
            String lo;
            String hi;
            if (bw.opset() >= 11) {
                for (int i = 1; i < 3; i++) {
                    if (!in(n, i).isEmpty() && bw.wants(in(n, i))) {
                        throw new NoGradientRuleException("Clip node '" + n.getName() + "' has a differentiable "
                                + (i == 1 ? "min" : "max") + " bound; only constant (non-differentiable) bounds"
                                + " are supported");
                    }
                }
                lo = in(n, 1).isEmpty() ? null : in(n, 1);
                hi = in(n, 2).isEmpty() ? null : in(n, 2);
            } else {
                lo = hasAttr(n, "min") ? bw.scalar(floatAttr(n, "min", 0), x) : null;
                hi = hasAttr(n, "max") ? bw.scalar(floatAttr(n, "max", 0), x) : null;
            }
            String inside = lo == null ? null : bw.op("Greater", x, lo);
            if (hi != null) {
                String below = bw.op("Less", x, hi);
                inside = inside == null ? below : bw.op("And", inside, below);
            }
            String g = bw.grad(n, 0);
            bw.add(x, inside == null ? g
                    : bw.op("Mul", g, bw.op("Cast", List.of(inside), Attr.i("to", bw.dtype(x)))));
        });

        // ---- softmax family: dx = y ⊙ (g − Σ g⊙y)
        rule("Softmax", (n, bw) -> {
            long axis = softmaxAxis(n, bw);
            String g = bw.grad(n, 0);
            String s = bw.reduceSum(bw.op("Mul", g, y(n)), new long[] {axis}, true);
            bw.add(in(n, 0), bw.op("Mul", y(n), bw.op("Sub", g, s)));
        });
        rule("LogSoftmax", (n, bw) -> { // dx = g − exp(y) Σ g
            long axis = softmaxAxis(n, bw);
            String g = bw.grad(n, 0);
            String s = bw.reduceSum(g, new long[] {axis}, true);
            bw.add(in(n, 0), bw.op("Sub", g, bw.op("Mul", bw.op("Exp", y(n)), s)));
        });

        // ---- shape ops: the gradient is reshaped, transposed, padded or sliced back
        GradRule reshapeBack = (n, bw) -> bw.add(in(n, 0), bw.reshapeLike(bw.grad(n, 0), in(n, 0)));
        rule("Reshape", reshapeBack);
        rule("Squeeze", reshapeBack);
        rule("Unsqueeze", reshapeBack);
        rule("Flatten", reshapeBack);
        rule("Transpose", (n, bw) -> {
            int rank = bw.shape(in(n, 0)).length;
            List<Long> perm = OnnxGraph.attrInts(n, "perm");
            long[] inv = new long[rank];
            for (int i = 0; i < rank; i++) {
                int p = perm.isEmpty() ? rank - 1 - i : perm.get(i).intValue();
                inv[p] = i;
            }
            bw.add(in(n, 0), bw.op("Transpose", List.of(bw.grad(n, 0)), Attr.ints("perm", inv)));
        });
        rule("Expand", (n, bw) -> bw.add(in(n, 0), bw.unbroadcast(bw.grad(n, 0), bw.shape(y(n)), in(n, 0))));
        rule("Slice", GradRules::slice);
        rule("Split", (n, bw) -> {
            int rank = bw.shape(in(n, 0)).length;
            long axis = norm(OnnxGraph.attrInt(n, "axis", 0), rank);
            List<String> parts = new ArrayList<>();
            for (int i = 0; i < n.getOutputCount(); i++) {
                String g = bw.grad(n, i);
                parts.add(g != null ? g : bw.zerosLike(n.getOutput(i))); // unused outputs get zeros
            }
            bw.add(in(n, 0), bw.op("Concat", parts, Attr.i("axis", axis)));
        });
        rule("Concat", (n, bw) -> {
            int rank = bw.shape(y(n)).length;
            long axis = norm(OnnxGraph.attrInt(n, "axis", 0), rank);
            long offset = 0;
            for (String x : n.getInputList()) {
                long len = bw.shape(x)[(int) axis];
                if (bw.wants(x)) {
                    bw.add(x, bw.op("Slice", List.of(bw.grad(n, 0), bw.ints(offset), bw.ints(offset + len),
                            bw.ints(axis))));
                }
                offset += len;
            }
        });

        rule("Tile", (n, bw) -> { // x̄ = Σ over tiles: g reshaped [.., rᵢ, dᵢ, ..] summed over the rᵢ axes
            String x = in(n, 0);
            long[] xs = bw.shape(x);
            long[] reps = bw.constantInts(in(n, 1));
            if (reps == null) {
                throw new NoGradientRuleException("Tile node '" + n.getName() + "' has non-constant repeats;"
                        + " specialise the graph's shapes first");
            }
            List<Long> split = new ArrayList<>();
            List<Long> axes = new ArrayList<>();
            for (int i = 0; i < xs.length; i++) {
                if (reps[i] != 1) {
                    axes.add((long) split.size());
                    split.add(reps[i]);
                }
                split.add(xs[i]);
            }
            String g = bw.grad(n, 0);
            if (!axes.isEmpty()) {
                g = bw.reduceSum(bw.reshape(g, split.stream().mapToLong(Long::longValue).toArray()),
                        axes.stream().mapToLong(Long::longValue).toArray(), false);
            }
            bw.add(x, g);
        });
        rule("Pad", GradRules::pad);
        rule("Trilu", (n, bw) -> { // x̄ = Trilu(g) with the same k and upper
            List<String> ins = new ArrayList<>(List.of(bw.grad(n, 0)));
            if (!in(n, 1).isEmpty()) {
                ins.add(in(n, 1));
            }
            bw.add(in(n, 0), bw.op("Trilu", ins, Attr.i("upper", OnnxGraph.attrInt(n, "upper", 1))));
        });

        rule("Gather", (n, bw) -> { // x̄ = zeros; x̄[.., i[j], ..] += g[.., j, ..] (axis moved first)
            String data = in(n, 0);
            long[] ds = bw.shape(data);
            int r = ds.length;
            int a = (int) norm(OnnxGraph.attrInt(n, "axis", 0), r);
            int q = bw.shape(y(n)).length - r + 1; // rank of the indices
            // g: D[:a] + I + D[a+1:]  ->  I + D[:a] + D[a+1:]
            long[] gPerm = new long[r - 1 + q];
            long[] front = new long[r]; // D[a] + D[:a] + D[a+1:]
            long[] back = new long[r];
            int k = 0;
            for (int i = 0; i < q; i++) {
                gPerm[k++] = a + i;
            }
            for (int i = 0; i < a; i++) {
                gPerm[k++] = i;
            }
            for (int i = a + q; i < r - 1 + q; i++) {
                gPerm[k++] = i;
            }
            front[0] = ds[a];
            for (int i = 0; i < r; i++) {
                if (i != a) {
                    front[i < a ? i + 1 : i] = ds[i];
                }
                back[i] = i < a ? i + 1 : i == a ? 0 : i;
            }
            String g = bw.grad(n, 0);
            if (a != 0) {
                g = bw.op("Transpose", List.of(g), Attr.ints("perm", gPerm));
            }
            String s;
            if (bw.opset() >= 16) {
                String idx = bw.op("Unsqueeze", in(n, 1), bw.ints(-1));
                s = bw.op("ScatterND", List.of(bw.zeros(front, data), idx, g), Attr.s("reduction", "add"));
            } else {
                // no ScatterND(reduction=add) before opset 16: the sum over repeated indices as a product,
                // x̄ = onehot(i)ᵀ g over the N gathered rows ([V, N] × [N, rest]); OneHot wraps negative indices
                long rows = 1;
                for (long d : bw.shape(in(n, 1))) {
                    rows *= d;
                }
                long rest = 1;
                for (int i = 1; i < r; i++) {
                    rest *= front[i];
                }
                String flat = bw.reshape(in(n, 1), new long[] {rows});
                // ORT's OneHot has float values only; 0 and 1 are exact in any float type
                String oneHot = bw.op("Cast", List.of(bw.op("OneHot", List.of(flat, bw.ints(front[0]),
                        bw.op("Cast", List.of(bw.ints(0, 1)), Attr.i("to", ElemTypes.FLOAT))))),
                        Attr.i("to", bw.dtype(data)));
                String product = bw.op("MatMul", List.of(bw.op("Transpose", List.of(oneHot), Attr.ints("perm", 1, 0)),
                        bw.reshape(g, new long[] {rows, rest})));
                s = bw.reshape(product, front);
            }
            bw.add(data, a == 0 ? s : bw.op("Transpose", List.of(s), Attr.ints("perm", back)));
        });

        rule("GatherElements", (n, bw) -> { // scatter the gradient back to the gathered elements
            String data = in(n, 0);
            long axis = norm(OnnxGraph.attrInt(n, "axis", 0), bw.shape(data).length);
            long[] idx = bw.shape(in(n, 1));
            boolean unique = idx[(int) axis] == 1; // one index per slice along the axis: no collisions
            if (!unique && bw.opset() < 16) {
                throw new NoGradientRuleException("GatherElements node '" + n.getName() + "' may gather an element"
                        + " twice; its gradient needs ScatterElements(reduction=add), opset 16 (model: "
                        + bw.opset() + ")");
            }
            Attr[] attrs = unique ? new Attr[] {Attr.i("axis", axis)}
                    : new Attr[] {Attr.i("axis", axis), Attr.s("reduction", "add")};
            bw.add(data, bw.op("ScatterElements", List.of(bw.zerosLike(data), in(n, 1), bw.grad(n, 0)), attrs));
        });

        rule("ScatterND", (n, bw) -> { // data keeps g except where overwritten; updates read g there
            String reduction = OnnxGraph.attrString(n, "reduction", "none");
            if (!reduction.equals("none") && !reduction.equals("add")) {
                throw new NoGradientRuleException("ScatterND node '" + n.getName() + "' uses reduction '" + reduction
                        + "'; only none and add are supported");
            }
            String g = bw.grad(n, 0);
            if (bw.wants(in(n, 0))) {
                bw.add(in(n, 0), reduction.equals("add") ? g
                        : bw.op("ScatterND", g, in(n, 1), bw.zerosLike(in(n, 2))));
            }
            if (bw.wants(in(n, 2))) {
                bw.add(in(n, 2), bw.op("GatherND", g, in(n, 1)));
            }
        });
        rule("GatherND", (n, bw) -> { // the gradient is scatter-added back (indices may repeat)
            if (OnnxGraph.attrInt(n, "batch_dims", 0) != 0) {
                throw new NoGradientRuleException("GatherND node '" + n.getName() + "' has batch_dims != 0");
            }
            if (bw.opset() < 16) {
                throw new NoGradientRuleException("GatherND node '" + n.getName() + "' needs ScatterND with"
                        + " reduction=add for its gradient: opset 16 (model: " + bw.opset() + ")");
            }
            bw.add(in(n, 0), bw.op("ScatterND", List.of(bw.zerosLike(in(n, 0)), in(n, 1), bw.grad(n, 0)),
                    Attr.s("reduction", "add")));
        });

        // ---- reductions: the gradient is broadcast back over the reduced axes
        rule("ReduceSum", (n, bw) -> reduce(n, bw, false));
        rule("ReduceMean", (n, bw) -> reduce(n, bw, true));

        // ---- linear algebra
        rule("MatMul", (n, bw) -> matMul(n, bw, () -> in(n, 0), () -> in(n, 1)));
        rule("Einsum", GradRules::einsum);

        // ---- quantisation (int8 exports), by the straight-through estimator: a quantised copy of a float tensor
        // carries a real-valued gradient in units of its steps, as if rounding were the identity; a dynamic
        // quantiser's scale and zero point are held constant (they carry no gradient, see differentiable)
        rule("DynamicQuantizeLinear", (n, bw) -> // y = round(x / s) + z with s, z spanning x's range: x̄ = ȳ / s
                bw.add(in(n, 0), bw.op("Div", bw.grad(n, 0), n.getOutput(1))));
        rule("QuantizeLinear", GradRules::quantizeLinear);
        rule("DequantizeLinear", (n, bw) -> // y = (x − z) · s: x̄ = ȳ · s
                bw.add(in(n, 0), bw.op("Mul", bw.grad(n, 0), perAxis(n, bw, in(n, 1), in(n, 0)))));
        // onnxruntime's fused forms of the same (its optimiser writes them into int8 graphs): Y = (Ã ⊙ ..) B̃ ⊙ b_s + bias
        MICROSOFT_RULES.put("DynamicQuantizeMatMul", (n, bw) -> // A float, quantised inside: Ā = (Ȳ ⊙ b_s) B̃ᵀ
                scaledProduct(n, bw, null, in(n, 2), in(n, 3)));
        MICROSOFT_RULES.put("MatMulIntegerToFloat", (n, bw) -> // A an integer copy: Ā = a_s (Ȳ ⊙ b_s) B̃ᵀ
                scaledProduct(n, bw, in(n, 2), in(n, 3), in(n, 5)));
        rule("MatMulInteger", (n, bw) -> // Y = (A − a_z)(B − b_z), computed in float: Ā = Ȳ (B − b_z)ᵀ, B̄ = (A − a_z)ᵀ Ȳ
                matMul(n, bw, () -> centred(bw, in(n, 0), in(n, 2), true), () -> centred(bw, in(n, 1), in(n, 3),
                        false)));
        rule("Gemm", (n, bw) -> { // Y = α A' B' + β C
            String a = in(n, 0);
            String b = in(n, 1);
            boolean ta = OnnxGraph.attrInt(n, "transA", 0) == 1;
            boolean tb = OnnxGraph.attrInt(n, "transB", 0) == 1;
            double alpha = floatAttr(n, "alpha", 1);
            double beta = floatAttr(n, "beta", 1);
            String g = alpha == 1 ? bw.grad(n, 0) : bw.op("Mul", bw.grad(n, 0), bw.scalar(alpha, y(n)));
            if (bw.wants(a)) {
                bw.add(a, ta ? bw.op("MatMul", tb ? bw.transposeLast2(b, 2) : b, bw.transposeLast2(g, 2))
                        : bw.op("MatMul", g, tb ? b : bw.transposeLast2(b, 2)));
            }
            if (bw.wants(b)) {
                bw.add(b, tb ? bw.op("MatMul", bw.transposeLast2(g, 2), ta ? bw.transposeLast2(a, 2) : a)
                        : bw.op("MatMul", ta ? a : bw.transposeLast2(a, 2), g));
            }
            if (n.getInputCount() > 2 && bw.wants(in(n, 2))) {
                String gc = beta == 1 ? bw.grad(n, 0) : bw.op("Mul", bw.grad(n, 0), bw.scalar(beta, y(n)));
                bw.add(in(n, 2), bw.unbroadcast(gc, bw.shape(y(n)), in(n, 2)));
            }
        });

        // ---- normalisation: the saved mean and inverse std when the forward outputs them (LayerNormFusion makes
        // it), else recomputed from X
        rule("LayerNormalization", (n, bw) -> {
            boolean saved = n.getOutputCount() == 3 && !n.getOutput(1).isEmpty() && !n.getOutput(2).isEmpty();
            bw.add(in(n, 0), layerNorm(n, bw, in(n, 0), OnnxGraph.attrInt(n, "axis", -1), 1, 2,
                    saved ? n.getOutput(1) : null, saved ? n.getOutput(2) : null));
        });
        // onnxruntime's y = LayerNorm(input + skip (+ bias)) over the last axis, the sum as optional output 3; its CPU
        // kernel writes no mean or inverse std, so they are recomputed from the sum
        MICROSOFT_RULES.put("SkipLayerNormalization", (n, bw) -> {
            boolean biased = n.getInputCount() > 4 && !in(n, 4).isEmpty();
            String sum = n.getOutputCount() > 3 ? n.getOutput(3) : "";
            if (sum.isEmpty()) {
                sum = bw.op("Add", in(n, 0), in(n, 1));
                sum = biased ? bw.op("Add", sum, in(n, 4)) : sum;
            }
            String gs = layerNorm(n, bw, sum, -1, 2, 3, null, null);
            String read = bw.grad(n, 3); // the sum's other readers
            gs = read == null ? gs : bw.op("Add", gs, read);
            long[] ys = bw.shape(y(n));
            for (int i : biased ? new int[] {0, 1, 4} : new int[] {0, 1}) {
                if (bw.wants(in(n, i))) {
                    bw.add(in(n, i), bw.unbroadcast(gs, ys, in(n, i)));
                }
            }
        });
    }

    /**
     * Layer norm y = x̂·γ + β over the axes from {@code axisAttr} on, x̂ = (x − μ)·σ⁻¹, γ and β inputs
     * {@code gammaAt} and {@code betaAt} of {@code n} (β optional): adds γ's and β's gradients and returns x's,
     * x̄ = σ⁻¹(ḡ − mean(ḡ) − x̂·mean(ḡ·x̂)) with ḡ = g·γ (nodes nothing reads are removed later). {@code mean} and
     * {@code inv} are the saved statistics, or null to recompute them from x.
     */
    private static String layerNorm(NodeProto n, Backward bw, String x, long axisAttr, int gammaAt, int betaAt,
                                    String mean, String inv) {
        long[] ys = bw.shape(y(n)); // x's shape too (x may be a sum made here)
        long axis = norm(axisAttr, ys.length);
        long[] axes = new long[(int) (ys.length - axis)];
        for (int i = 0; i < axes.length; i++) {
            axes[i] = axis + i;
        }
        String mu = mean != null ? mean : bw.reduceMean(x, axes, true);
        String xc = bw.op("Sub", x, mu);
        String invStd = inv != null ? inv : bw.op("Reciprocal", bw.op("Sqrt", bw.op("Add",
                bw.reduceMean(bw.op("Mul", xc, xc), axes, true), bw.scalar(floatAttr(n, "epsilon", 1e-5), y(n)))));
        String xhat = bw.op("Mul", xc, invStd);
        String g = bw.grad(n, 0);
        String gamma = in(n, gammaAt);
        if (bw.wants(gamma)) {
            bw.add(gamma, bw.unbroadcast(bw.op("Mul", g, xhat), ys, gamma));
        }
        if (n.getInputCount() > betaAt && !in(n, betaAt).isEmpty() && bw.wants(in(n, betaAt))) {
            bw.add(in(n, betaAt), bw.unbroadcast(g, ys, in(n, betaAt)));
        }
        String gh = bw.op("Mul", g, gamma);
        String m1 = bw.reduceMean(gh, axes, true);
        String m2 = bw.reduceMean(bw.op("Mul", gh, xhat), axes, true);
        return bw.op("Mul", invStd, bw.op("Sub", bw.op("Sub", gh, m1), bw.op("Mul", xhat, m2)));
    }

    private static long norm(long axis, int rank) {
        return axis < 0 ? axis + rank : axis;
    }

    private static double floatAttr(NodeProto n, String name, double fallback) {
        for (var a : n.getAttributeList()) {
            if (a.getName().equals(name)) {
                return a.getF();
            }
        }
        return fallback;
    }

    private static boolean hasAttr(NodeProto n, String name) {
        return n.getAttributeList().stream().anyMatch(a -> a.getName().equals(name));
    }

    /** Max and Min: the gradient goes to the selected input(s), x̄ᵢ = g · [xᵢ == y]. Exact ties are out of scope. */
    private static void select(NodeProto n, Backward bw) {
        String g = bw.grad(n, 0);
        long[] ys = bw.shape(y(n));
        for (String x : n.getInputList()) {
            if (bw.wants(x)) {
                String mask = bw.op("Cast", List.of(bw.op("Equal", x, y(n))), Attr.i("to", bw.dtype(x)));
                bw.add(x, bw.unbroadcast(bw.op("Mul", g, mask), ys, x));
            }
        }
    }

    /**
     * Pad (constant mode): x̄ = Pad(g, −pads), which slices off positive pads and zero-fills cropped (negative)
     * ones; the constant value gets Σ g − Σ x̄ (the padded positions).
     */
    private static void pad(NodeProto n, Backward bw) {
        String mode = OnnxGraph.attrString(n, "mode", "constant");
        if (!mode.equals("constant")) {
            throw new NoGradientRuleException("Pad node '" + n.getName() + "' uses mode '" + mode + "'; only"
                    + " mode 'constant' is supported");
        }
        String x = in(n, 0);
        String g = bw.grad(n, 0);
        String xBar;
        if (bw.opset() < 11) {
            long[] pads = OnnxGraph.attrInts(n, "pads").stream().mapToLong(p -> -p).toArray();
            xBar = bw.op("Pad", List.of(g), Attr.ints("pads", pads));
        } else {
            long[] pads = bw.constantInts(in(n, 1));
            String neg = pads != null ? bw.ints(Arrays.stream(pads).map(p -> -p).toArray())
                    : bw.op("Neg", in(n, 1));
            List<String> ins = new ArrayList<>(List.of(g, neg));
            if (!in(n, 3).isEmpty()) { // axes (opset 18)
                ins.add("");
                ins.add(in(n, 3));
            }
            xBar = bw.op("Pad", ins);
        }
        bw.add(x, xBar);
        String value = in(n, 2);
        if (bw.opset() >= 11 && !value.isEmpty() && bw.wants(value)) {
            String rest = bw.op("Sub", sumAll(bw, g, bw.shape(y(n)).length), sumAll(bw, xBar, bw.shape(x).length));
            bw.add(value, bw.reshape(rest, bw.shape(value)));
        }
    }

    private static String sumAll(Backward bw, String x, int rank) {
        long[] axes = new long[rank];
        for (int i = 0; i < axes.length; i++) {
            axes[i] = i;
        }
        return axes.length == 0 ? x : bw.reduceSum(x, axes, false);
    }

    /**
     * Einsum: for output spec O and operands with specs S₁..Sₙ, x̄ₖ = einsum(O, S_{j≠k} → Sₖ'), where Sₖ' keeps the
     * letters of Sₖ that occur in O or another operand; letters only Sₖ has (summed out) are expanded back.
     * Ellipses become fresh letters. Unsupported (NoGradientRuleException): a letter repeated inside one operand
     * (diagonals) and size-1 broadcasting of a letter or of ellipsis dims.
     */
    private static void einsum(NodeProto n, Backward bw) {
        String eq = OnnxGraph.attrString(n, "equation", "").replace(" ", "");
        int arrow = eq.indexOf("->");
        String[] specs = (arrow < 0 ? eq : eq.substring(0, arrow)).split(",", -1);
        String where = "Einsum node '" + n.getName() + "' (equation '" + eq + "')";
        if (specs.length != n.getInputCount()) {
            throw new NoGradientRuleException(where + " has " + n.getInputCount() + " inputs for " + specs.length
                    + " operand specs");
        }
        // ellipsis dims become fresh letters, aligned from the right
        int[] ellRank = new int[specs.length];
        int maxEll = 0;
        for (int k = 0; k < specs.length; k++) {
            int rank = bw.shape(in(n, k)).length;
            ellRank[k] = specs[k].contains("...") ? rank - (specs[k].length() - 3) : 0;
            maxEll = Math.max(maxEll, ellRank[k]);
        }
        StringBuilder fresh = new StringBuilder();
        for (char c : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".toCharArray()) {
            if (fresh.length() < maxEll && eq.indexOf(c) < 0) {
                fresh.append(c);
            }
        }
        if (fresh.length() < maxEll) {
            throw new NoGradientRuleException(where + ": no free letters left for its ellipsis dims");
        }
        String ell = fresh.toString();
        String[] ops = new String[specs.length];
        Map<Character, Long> size = new TreeMap<>();
        for (int k = 0; k < specs.length; k++) {
            ops[k] = specs[k].replace("...", ell.substring(maxEll - ellRank[k]));
            long[] xs = bw.shape(in(n, k));
            if (ops[k].length() != xs.length) {
                throw new NoGradientRuleException(where + ": operand " + k + " has rank " + xs.length);
            }
            for (int i = 0; i < xs.length; i++) {
                char c = ops[k].charAt(i);
                if (ops[k].indexOf(c) != i) {
                    throw new NoGradientRuleException(where + " repeats '" + c + "' in operand " + k + " (a"
                            + " diagonal); only operands with distinct letters are supported");
                }
                Long prev = size.putIfAbsent(c, xs[i]);
                if (prev != null && prev != xs[i]) {
                    throw new NoGradientRuleException(where + " broadcasts dim '" + c + "' (" + prev + " vs "
                            + xs[i] + "); only operands with equal sizes per letter are supported");
                }
            }
        }
        String out;
        if (arrow >= 0) {
            out = eq.substring(arrow + 2).replace("...", ell);
        } else { // implicit output: ellipsis, then the letters occurring once, alphabetically
            StringBuilder o = new StringBuilder(ell);
            String all = String.join("", specs).replace("...", "");
            all.chars().filter(c -> all.indexOf(c) == all.lastIndexOf(c)).sorted().forEach(c -> o.append((char) c));
            out = o.toString();
        }
        long[] ys = bw.shape(y(n));
        boolean matches = out.length() == ys.length;
        for (int i = 0; matches && i < ys.length; i++) {
            matches = size.get(out.charAt(i)) != null && size.get(out.charAt(i)) == ys[i];
        }
        if (!matches) {
            throw new NoGradientRuleException(where + ": resolved output '" + out + "' does not match the output"
                    + " shape " + Arrays.toString(ys));
        }
        String g = bw.grad(n, 0);
        for (int k = 0; k < specs.length; k++) {
            String x = in(n, k);
            if (!bw.wants(x)) {
                continue;
            }
            List<String> terms = new ArrayList<>(List.of(out));
            List<String> tensors = new ArrayList<>(List.of(g));
            for (int j = 0; j < specs.length; j++) {
                if (j != k) {
                    terms.add(ops[j]);
                    tensors.add(in(n, j));
                }
            }
            String others = String.join("", terms);
            StringBuilder keep = new StringBuilder();
            long[] kept = bw.shape(x).clone();
            for (int i = 0; i < ops[k].length(); i++) {
                char c = ops[k].charAt(i);
                if (others.indexOf(c) >= 0) {
                    keep.append(c);
                } else {
                    kept[i] = 1; // summed out in the forward: broadcast back
                }
            }
            String xBar = bw.op("Einsum", tensors, Attr.s("equation", String.join(",", terms) + "->" + keep));
            if (keep.length() < ops[k].length()) {
                xBar = bw.op("Expand", bw.reshape(xBar, kept), bw.ints(bw.shape(x)));
            }
            bw.add(x, xBar);
        }
    }

    /** Softmax's axis; before opset 13 softmax flattens to 2-D at the axis, the same only for the last axis. */
    private static long softmaxAxis(NodeProto n, Backward bw) {
        int rank = bw.shape(y(n)).length;
        long axis = norm(OnnxGraph.attrInt(n, "axis", bw.opset() >= 13 ? -1 : 1), rank);
        if (bw.opset() < 13 && axis != rank - 1) {
            throw new NoGradientRuleException(n.getOpType() + " node '" + n.getName() + "' (opset " + bw.opset()
                    + ") normalises over axes " + axis + ".." + (rank - 1) + " flattened; only the last axis is"
                    + " supported before opset 13");
        }
        return axis;
    }

    private static void reduce(NodeProto n, Backward bw, boolean mean) {
        String x = in(n, 0);
        long[] xs = bw.shape(x);
        boolean axesAsInput = n.getOpType().equals("ReduceSum") ? bw.opset() >= 13 : bw.opset() >= 18;
        long[] axes;
        if (axesAsInput) {
            axes = n.getInputCount() > 1 && !in(n, 1).isEmpty() ? bw.constantInts(in(n, 1)) : new long[0];
            if (axes == null) {
                throw new NoGradientRuleException(n.getOpType() + " node '" + n.getName() + "' has non-constant axes");
            }
        } else {
            axes = OnnxGraph.attrInts(n, "axes").stream().mapToLong(Long::longValue).toArray();
        }
        if (axes.length == 0) {
            if (OnnxGraph.attrInt(n, "noop_with_empty_axes", 0) == 1) {
                bw.add(x, bw.grad(n, 0));
                return;
            }
            axes = new long[xs.length];
            for (int i = 0; i < xs.length; i++) {
                axes[i] = i;
            }
        }
        long[] kept = xs.clone();
        long count = 1;
        for (long a : axes) {
            int i = (int) norm(a, xs.length);
            count *= xs[i];
            kept[i] = 1;
        }
        String g = bw.reshape(bw.grad(n, 0), kept);
        if (mean) {
            g = bw.op("Div", g, bw.scalar(count, x));
        }
        bw.add(x, bw.op("Expand", g, bw.ints(xs)));
    }

    /** Slice's gradient is the output gradient padded with zeros back to the input's extent (step 1 only). */
    private static void slice(NodeProto n, Backward bw) {
        String x = in(n, 0);
        long[] xs = bw.shape(x);
        long[] starts;
        long[] ends;
        long[] axes;
        long[] steps = null;
        if (bw.opset() < 10) {
            starts = OnnxGraph.attrInts(n, "starts").stream().mapToLong(Long::longValue).toArray();
            ends = OnnxGraph.attrInts(n, "ends").stream().mapToLong(Long::longValue).toArray();
            axes = OnnxGraph.attrInts(n, "axes").stream().mapToLong(Long::longValue).toArray();
        } else {
            starts = bw.constantInts(in(n, 1));
            ends = bw.constantInts(in(n, 2));
            axes = n.getInputCount() > 3 && !in(n, 3).isEmpty() ? bw.constantInts(in(n, 3)) : new long[0];
            steps = n.getInputCount() > 4 && !in(n, 4).isEmpty() ? bw.constantInts(in(n, 4)) : null;
        }
        if (starts == null || ends == null || axes == null) {
            throw new NoGradientRuleException("Slice node '" + n.getName() + "' has non-constant starts/ends/axes;"
                    + " specialise the graph's shapes first");
        }
        if (axes.length == 0) {
            axes = new long[starts.length];
            for (int i = 0; i < axes.length; i++) {
                axes[i] = i;
            }
        }
        long[] pads = new long[2 * xs.length];
        for (int i = 0; i < axes.length; i++) {
            if (steps != null && steps[i] != 1) {
                throw new NoGradientRuleException("Slice node '" + n.getName() + "' has step " + steps[i]
                        + "; only step 1 is supported");
            }
            int ax = (int) norm(axes[i], xs.length);
            long dim = xs[ax];
            long s = starts[i] < 0 ? starts[i] + dim : starts[i];
            long e = ends[i] < 0 ? ends[i] + dim : ends[i];
            s = Math.max(0, Math.min(s, dim));
            e = Math.max(s, Math.min(e, dim));
            pads[ax] = s;
            pads[ax + xs.length] = dim - e;
        }
        String g = bw.grad(n, 0);
        String padded = bw.opset() >= 11 ? bw.op("Pad", g, bw.ints(pads))
                : bw.op("Pad", List.of(g), Attr.ints("pads", pads));
        bw.add(x, padded);
    }
}
