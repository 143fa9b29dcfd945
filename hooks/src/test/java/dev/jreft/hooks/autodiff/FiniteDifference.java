package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checks a gradient rule against a central finite-difference Jacobian on ORT CPU: the op's output is reduced to a
 * scalar with random weights ({@code loss = Σ y ⊙ W}), the backward graph's gradient of each input is compared
 * with (loss(x + ε) − loss(x − ε)) / 2ε element by element.
 */
final class FiniteDifference {
    private final int opset;
    private final int elemType;
    private final Map<String, INDArray> inputs = new LinkedHashMap<>();
    private final List<String> differentiable = new ArrayList<>();
    private BiFunction<SubgraphBuilder, Map<String, String>, String> body;
    private final Random random = new Random(11);

    FiniteDifference(int opset, boolean float64) {
        this.opset = opset;
        this.elemType = float64 ? TensorProto.DataType.DOUBLE_VALUE : ElemTypes.FLOAT;
    }

    /** A differentiable input with values drawn uniformly from [lo, hi]. */
    FiniteDifference input(String name, double lo, double hi, long... shape) {
        INDArray a = Nd4j.rand(DataType.DOUBLE, shape).muli(hi - lo).addi(lo);
        inputs.put(name, elemType == ElemTypes.FLOAT ? a.castTo(DataType.FLOAT) : a);
        differentiable.add(name);
        return this;
    }

    /** A non-differentiable input (condition, indices ...). */
    FiniteDifference data(String name, INDArray value) {
        inputs.put(name, value);
        return this;
    }

    /** The graph under test: gets input names, returns its output. */
    FiniteDifference body(BiFunction<SubgraphBuilder, Map<String, String>, String> body) {
        this.body = body;
        return this;
    }

    private Double eps;

    /** Finite-difference step (default 1e-6 in float64, 1e-3 in float32). */
    FiniteDifference eps(double e) {
        this.eps = e;
        return this;
    }

    int elemType() {
        return elemType;
    }

    private java.util.function.Consumer<OnnxGraph> transform = g -> { };
    private java.util.function.Consumer<OnnxGraph> inspect = g -> { };

    /** A rewrite of the whole graph (body and loss) before it is differentiated and run. */
    FiniteDifference transform(java.util.function.Consumer<OnnxGraph> t) {
        this.transform = t;
        return this;
    }

    private final List<String> domains = new ArrayList<>();

    /** Sees the backward graph before it runs (to check what it is made of). */
    FiniteDifference backward(java.util.function.Consumer<OnnxGraph> inspect) {
        this.inspect = inspect;
        return this;
    }

    /** Imports an op domain (com.microsoft) into the graph under test, version 1. */
    FiniteDifference importing(String domain) {
        domains.add(domain);
        return this;
    }

    /** Runs the check; returns the worst absolute error seen. */
    double check(double atol, double rtol) {
        OnnxGraph g = OnnxGraph.create(opset, "fd-test");
        domains.forEach(d -> g.importDomain(d, 1));
        String[] y = new String[1];
        g.append("t", b -> {
            Map<String, String> names = new LinkedHashMap<>();
            for (var e : inputs.entrySet()) {
                int t = switch (e.getValue().dataType()) {
                    case DOUBLE -> TensorProto.DataType.DOUBLE_VALUE;
                    case FLOAT -> ElemTypes.FLOAT;
                    case LONG -> ElemTypes.INT64;
                    case BOOL -> ElemTypes.BOOL;
                    default -> throw new IllegalArgumentException(e.getValue().dataType().toString());
                };
                names.put(e.getKey(), b.input(e.getKey(), t, e.getValue().shape()));
            }
            y[0] = body.apply(b, names);
        });
        // output shape, then the scalar loss Σ y ⊙ W with W random
        g.exposeOutput(y[0], elemType);
        long[] yShape = run(g, inputs, List.of(y[0])).get(y[0]).shape();
        INDArray w = Nd4j.rand(DataType.DOUBLE, yShape).subi(0.5).muli(2);
        String[] loss = new String[1];
        g.append("loss", b -> {
            String wi = b.input("W", elemType, yShape);
            loss[0] = b.op("ReduceSum", List.of(b.op("Mul", List.of(y[0], wi))), Attr.i("keepdims", 0));
        });
        g.exposeOutput(loss[0], elemType);
        Map<String, INDArray> feeds = new LinkedHashMap<>(inputs);
        feeds.put("W", elemType == ElemTypes.FLOAT ? w.castTo(DataType.FLOAT) : w);
        transform.accept(g);
        Map<String, long[]> shapes = ShapeProbe.probe(g, feeds);
        GradientGraph gg = GradientBuilder.build(g, loss[0], differentiable, shapes);
        inspect.accept(gg.graph());
        Map<String, INDArray> analytic = run(gg.graph(), feeds, new ArrayList<>(gg.gradients().values()));
        CompiledGraph forward = compile(g);
        double eps = this.eps != null ? this.eps : elemType == ElemTypes.FLOAT ? 1e-3 : 1e-6;
        double worst = 0;
        for (String x : differentiable) {
            INDArray base = feeds.get(x);
            INDArray a = analytic.get(gg.gradients().get(x)).castTo(DataType.DOUBLE);
            assertTrue(java.util.Arrays.equals(base.shape(), a.shape()), x + " gradient shape");
            for (long i = 0; i < base.length(); i++) {
                double v = base.getDouble(i);
                INDArray plus = base.dup();
                plus.putScalar(i, v + eps);
                INDArray minus = base.dup();
                minus.putScalar(i, v - eps);
                double fd = (lossAt(forward, feeds, x, plus, loss[0]) - lossAt(forward, feeds, x, minus, loss[0]))
                        / (2 * eps);
                double an = a.getDouble(i);
                double err = Math.abs(an - fd);
                worst = Math.max(worst, err);
                assertTrue(err <= atol + rtol * Math.abs(fd), "d loss / d " + x + "[" + i + "]: analytic " + an
                        + " vs finite difference " + fd);
            }
        }
        return worst;
    }

    private static double lossAt(CompiledGraph forward, Map<String, INDArray> feeds, String x, INDArray value,
                                 String loss) {
        Map<String, INDArray> f = new LinkedHashMap<>(feeds);
        f.put(x, value);
        return forward.run(f, List.of(loss)).get(loss).getDouble(0);
    }

    private static CompiledGraph compile(OnnxGraph g) {
        return new CompiledGraph(g, g.fingerprint(), OrtRuntime.shared());
    }

    private static Map<String, INDArray> run(OnnxGraph g, Map<String, INDArray> feeds, List<String> outputs) {
        return compile(g).run(feeds, outputs);
    }
}
