package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One gradient rule per op (default ONNX domain). Notation: x̄ is d loss / d x, g the output's gradient, y the
 * output. Every rule emits standard ONNX ops only; stop-gradient edges (shape and index inputs, Where's condition,
 * Pow's exponent) simply get no contribution.
 */
public final class GradRules {
    private static final Map<String, GradRule> RULES = new TreeMap<>();

    private GradRules() {
    }

    public static GradRule find(String domain, String op) {
        return domain.isEmpty() || domain.equals("ai.onnx") ? RULES.get(op) : null;
    }

    public static List<String> ops() {
        return List.copyOf(RULES.keySet());
    }

    private static void rule(String op, GradRule r) {
        RULES.put(op, r);
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
            bw.add(in(n, 0), bw.unbroadcast(g, ys, in(n, 0)));
            bw.add(in(n, 1), bw.unbroadcast(g, ys, in(n, 1)));
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
            String cMinus1 = bw.op("Sub", c, bw.scalar(1, c));
            String d = bw.op("Mul", bw.op("Cast", List.of(c), Attr.i("to", bw.dtype(in(n, 0)))),
                    bw.op("Pow", in(n, 0), cMinus1));
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
        rule("Identity", (n, bw) -> bw.add(in(n, 0), bw.grad(n, 0)));
        rule("Cast", (n, bw) -> bw.add(in(n, 0), bw.op("Cast", List.of(bw.grad(n, 0)),
                Attr.i("to", bw.dtype(in(n, 0))))));
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
        rule("MatMul", (n, bw) -> { // Ā = g Bᵀ, B̄ = Aᵀ g, un-broadcast over batch axes
            String a = in(n, 0);
            String b = in(n, 1);
            long[] as = bw.shape(a);
            long[] bs = bw.shape(b);
            long[] ys = bw.shape(y(n));
            if (as.length < 2 || bs.length < 2) {
                throw new NoGradientRuleException("MatMul node '" + n.getName() + "' has a 1-D operand; only"
                        + " operands of rank >= 2 are supported");
            }
            String g = bw.grad(n, 0);
            if (bw.wants(a)) {
                long[] s = Arrays.copyOf(ys, ys.length);
                s[s.length - 1] = as[as.length - 1];
                bw.add(a, bw.unbroadcast(bw.op("MatMul", g, bw.transposeLast2(b, bs.length)), s, a));
            }
            if (bw.wants(b)) {
                long[] s = Arrays.copyOf(ys, ys.length);
                s[s.length - 2] = bs[bs.length - 2];
                bw.add(b, bw.unbroadcast(bw.op("MatMul", bw.transposeLast2(a, as.length), g), s, b));
            }
        });
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

        // ---- normalisation: recompute mean and inverse std from X (the forward keeps no statistics)
        rule("LayerNormalization", (n, bw) -> {
            String x = in(n, 0);
            int rank = bw.shape(x).length;
            long axis = norm(OnnxGraph.attrInt(n, "axis", -1), rank);
            long[] axes = new long[(int) (rank - axis)];
            for (int i = 0; i < axes.length; i++) {
                axes[i] = axis + i;
            }
            String mu = bw.reduceMean(x, axes, true);
            String xc = bw.op("Sub", x, mu);
            String var = bw.reduceMean(bw.op("Mul", xc, xc), axes, true);
            String inv = bw.op("Reciprocal", bw.op("Sqrt", bw.op("Add", var,
                    bw.scalar(floatAttr(n, "epsilon", 1e-5), x))));
            String xhat = bw.op("Mul", xc, inv);
            String g = bw.grad(n, 0);
            long[] ys = bw.shape(y(n));
            if (bw.wants(x)) {
                String gh = bw.op("Mul", g, in(n, 1));
                String m1 = bw.reduceMean(gh, axes, true);
                String m2 = bw.reduceMean(bw.op("Mul", gh, xhat), axes, true);
                bw.add(x, bw.op("Mul", inv, bw.op("Sub", bw.op("Sub", gh, m1), bw.op("Mul", xhat, m2))));
            }
            if (bw.wants(in(n, 1))) {
                bw.add(in(n, 1), bw.unbroadcast(bw.op("Mul", g, xhat), ys, in(n, 1)));
            }
            if (n.getInputCount() > 2 && bw.wants(in(n, 2))) {
                bw.add(in(n, 2), bw.unbroadcast(g, ys, in(n, 2)));
            }
        });
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
