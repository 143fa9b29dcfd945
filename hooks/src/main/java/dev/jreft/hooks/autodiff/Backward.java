package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * State of one backward pass: the gradient contributions collected per tensor, the static shapes, and the
 * opset-aware emit helpers rules use. Contributions to a tensor read by several nodes are summed.
 */
public final class Backward {
    private final SubgraphBuilder b;
    private final dev.jreft.hooks.graph.OnnxGraph graph;
    private final Map<String, long[]> shapes;
    private final ElemTypes types;
    private final int opset;
    private final Set<String> onPath;
    private final Map<String, List<String>> contributions = new HashMap<>();
    private final Map<String, String> summed = new HashMap<>();

    Backward(SubgraphBuilder b, dev.jreft.hooks.graph.OnnxGraph graph, Map<String, long[]> shapes, ElemTypes types,
             int opset, Set<String> onPath) {
        this.b = b;
        this.graph = graph;
        this.shapes = shapes;
        this.types = types;
        this.opset = opset;
        this.onPath = onPath;
    }

    public int opset() {
        return opset;
    }

    /** The (summed) gradient of {@code tensor}, or null when no gradient reaches it. */
    public String grad(String tensor) {
        String s = summed.get(tensor);
        if (s != null) {
            return s;
        }
        List<String> c = contributions.get(tensor);
        if (c == null || c.isEmpty()) {
            return null;
        }
        s = c.size() == 1 ? c.get(0) : b.op("Sum", c);
        summed.put(tensor, s);
        return s;
    }

    /** The gradient of output {@code i} of {@code node}, or null. */
    public String grad(NodeProto node, int i) {
        return i < node.getOutputCount() && !node.getOutput(i).isEmpty() ? grad(node.getOutput(i)) : null;
    }

    /** True when {@code tensor} lies between a source and the loss, so it needs a gradient. */
    public boolean wants(String tensor) {
        return onPath.contains(tensor);
    }

    /** Adds a gradient contribution to {@code tensor} (ignored when it needs none). */
    public void add(String tensor, String gradient) {
        if (wants(tensor) && gradient != null) {
            if (summed.containsKey(tensor)) {
                throw new IllegalStateException("gradient of " + tensor + " was read before all contributions");
            }
            contributions.computeIfAbsent(tensor, k -> new ArrayList<>()).add(gradient);
        }
    }

    /** The value of a constant int tensor (Slice starts, reduction axes ...); null when not constant. */
    public long[] constantInts(String tensor) {
        long[] v = dev.jreft.hooks.graph.ConstantInts.evaluate(graph, tensor);
        if (v != null) {
            for (long x : v) {
                if (x == -1 && !graph.isInitializer(tensor) && graph.producer(tensor).map(n -> !n.getOpType()
                        .equals("Constant")).orElse(true)) {
                    return null;
                }
            }
        }
        return v;
    }

    /** The value of a one-element float constant (an initializer or a Constant node); null when it is not one. */
    public Double constantScalar(String tensor) {
        return graph.constantScalar(tensor);
    }

    public long[] shape(String tensor) {
        long[] s = shapes.get(tensor);
        if (s == null) {
            throw new IllegalStateException("no static shape known for tensor '" + tensor + "'");
        }
        return s;
    }

    /** True for a float tensor; false for an integer one (a quantised copy, whose gradient is float). */
    public boolean isFloat(String tensor) {
        return types.isFloat(tensor);
    }

    public int dtype(String tensor) {
        int t = types.of(tensor);
        return t == ElemTypes.UNKNOWN ? ElemTypes.FLOAT : t;
    }

    public String op(String type, List<String> in, Attr... attrs) {
        return b.op(type, in, attrs);
    }

    public String opTo(String out, String type, List<String> in, Attr... attrs) {
        return b.opTo(out, type, in, attrs);
    }

    public String op(String type, String... in) {
        return b.op(type, List.of(in));
    }

    /** A scalar constant with the element type of {@code like}. */
    public String scalar(double v, String like) {
        return b.scalar(v, dtype(like));
    }

    public String ints(long... values) {
        return b.constantInts(values, values.length);
    }

    public String zerosLike(String tensor) {
        return b.zeros(shape(tensor), dtype(tensor));
    }

    /** Zeros of {@code shape} with the element type of {@code like}. */
    public String zeros(long[] shape, String like) {
        return b.zeros(shape, dtype(like));
    }

    public String reshape(String x, long[] shape) {
        return op("Reshape", x, ints(shape));
    }

    /** Reshapes {@code g} to the shape of {@code like}. */
    public String reshapeLike(String g, String like) {
        return reshape(g, shape(like));
    }

    /** ReduceSum over {@code axes} (opset-aware). */
    public String reduceSum(String x, long[] axes, boolean keepDims) {
        return b.reduceSum(x, axes, keepDims);
    }

    /** ReduceMean over {@code axes} (opset-aware). */
    public String reduceMean(String x, long[] axes, boolean keepDims) {
        return b.reduceMean(x, axes, keepDims);
    }

    /**
     * Sums a gradient of the broadcast result's shape down to {@code target}'s shape: over leading axes the target
     * lacks and over axes where the target has size 1.
     */
    public String unbroadcast(String g, long[] gShape, String target) {
        long[] t = shape(target);
        if (Arrays.equals(gShape, t)) {
            return g;
        }
        int lead = gShape.length - t.length;
        List<Long> axes = new ArrayList<>();
        for (int i = 0; i < gShape.length; i++) {
            if (i < lead || (t[i - lead] == 1 && gShape[i] != 1)) {
                axes.add((long) i);
            }
        }
        String r = axes.isEmpty() ? g : reduceSum(g, axes.stream().mapToLong(Long::longValue).toArray(), true);
        return reshape(r, t);
    }

    /**
     * {@code op(x) · op(y)}, op transposing the last two of {@code rank} axes where asked, in the element type of the
     * forward tensor {@code like}. Between float activations (neither operand an initializer) it is one onnxruntime
     * {@code FusedMatMul} with transA / transB: as a Transpose and a MatMul, ORT's transpose optimiser merged the
     * Transpose with the forward's own (attention's head split, before the scores and the context) into one that no
     * MatMul absorbs, run at full size (three a layer, about 4 ms of a MiniLM LoRA step). A weight keeps Transpose +
     * MatMul (ORT folds the transposed initializer once and prepacks it), and so do float64 graphs (the
     * finite-difference checks): FusedMatMul has float kernels only.
     */
    public String product(String x, boolean transX, String y, boolean transY, int rank, String like) {
        boolean fused = (transX || transY) && dtype(like) == ElemTypes.FLOAT && !graph.isInitializer(x)
                && !graph.isInitializer(y);
        if (fused) {
            return b.op(GradRules.MICROSOFT, "FusedMatMul", List.of(x, y), Attr.i("transA", transX ? 1 : 0),
                    Attr.i("transB", transY ? 1 : 0));
        }
        return op("MatMul", transX ? transposeLast2(x, rank) : x, transY ? transposeLast2(y, rank) : y);
    }

    /** Swaps the last two axes of a tensor of rank {@code rank}. */
    public String transposeLast2(String x, int rank) {
        long[] perm = new long[rank];
        for (int i = 0; i < rank; i++) {
            perm[i] = i;
        }
        perm[rank - 1] = rank - 2;
        perm[rank - 2] = rank - 1;
        return b.op("Transpose", List.of(x), Attr.ints("perm", perm));
    }
}
