package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.ByteString;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.OrtRuntime;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The quantisation rules by the straight-through estimator (rounding is piecewise constant, so a finite difference
 * says nothing): a quantised graph's gradient must equal the gradient of its dequantised float twin, in which every
 * quantise / dequantise step is the identity and every int8 weight is (Wq − zero) · scale. The twin's own rules are
 * checked against finite differences in {@link GradRulesTest}.
 */
class QuantisedGradientsTest {
    private final Random random = new Random(5);

    @Test
    void dynamicallyQuantisedLinearHasTheGradientOfItsDequantisedWeight() {
        // onnxruntime's dynamic quantisation, as in the int8 MiniLM: y = Cast(MatMulInteger(q(x), Wq, z(x), Wz))
        // · (s(x) · Ws), with a per-column int8 weight
        Int8Weight w = Int8Weight.random(random);
        INDArray x = w.input();
        INDArray quantised = gradient(11, x, (g, b) -> {
            w.addTo(g);
            String[] q = {b.name("xq"), b.name("xs"), b.name("xz")};
            b.opN("DynamicQuantizeLinear", List.of("x"), q);
            String product = b.op("MatMulInteger", List.of(q[0], "Wq", q[2], "Wz"));
            String real = b.op("Cast", List.of(product), Attr.i("to", ElemTypes.FLOAT));
            return b.op("Mul", List.of(real, b.op("Mul", List.of(q[1], "Ws"))));
        });
        assertClose(w.twinGradient(x), quantised, 1e-5);
    }

    @Test
    void onnxruntimesFusedInt8ProductsHaveTheGradientOfTheDequantisedWeight() {
        // its optimiser turns the chain above into MatMulIntegerToFloat (after a DynamicQuantizeLinear) or
        // DynamicQuantizeMatMul (quantising inside)
        Int8Weight w = Int8Weight.random(random);
        INDArray x = w.input();
        INDArray twin = w.twinGradient(x);
        for (boolean inside : new boolean[] {true, false}) {
            INDArray fused = gradient(11, x, (g, b) -> {
                g.importDomain(GradRules.MICROSOFT, 1);
                w.addTo(g);
                if (inside) {
                    return b.op(GradRules.MICROSOFT, "DynamicQuantizeMatMul", List.of("x", "Wq", "Ws", "Wz"));
                }
                String[] q = {b.name("xq"), b.name("xs"), b.name("xz")};
                b.opN("DynamicQuantizeLinear", List.of("x"), q);
                return b.op(GradRules.MICROSOFT, "MatMulIntegerToFloat", List.of(q[0], "Wq", q[1], "Ws", q[2], "Wz"));
            });
            assertClose(twin, fused, 1e-5);
        }
    }

    @Test
    void qdqPairPassesTheGradientStraightThroughInsideTheIntegerRange() {
        // uint8, zero 128, step 0.01: x in [-1.28, 1.27] is represented; outside it is clipped and gets no gradient
        INDArray x = Nd4j.create(new float[] {-2f, -1.2f, -0.3f, 0f, 0.004f, 0.9f, 1.26f, 1.5f}, new long[] {2, 4});
        INDArray straight = gradient(13, x, (g, b) -> {
            String s = b.constantFloats(new float[] {0.01f});
            g.addInitializer(ints("z", TensorProto.DataType.UINT8_VALUE, new byte[] {(byte) 128}));
            String q = b.op("QuantizeLinear", List.of("x", s, "z"));
            return b.op("DequantizeLinear", List.of(q, s, "z"));
        });
        INDArray identity = gradient(13, x, (g, b) -> b.op("Identity", List.of("x")));
        float[] inRange = {0, 1, 1, 1, 1, 1, 1, 0};
        assertClose(identity.mul(Nd4j.create(inRange, new long[] {2, 4})), straight, 1e-6);
    }

    @Test
    void perAxisInt8QdqOfAnActivationAndAWeightBothGetGradients() {
        // QDQ export: MatMul(DQ(Q(x)), DQ(Wq)) with a per-column int8 weight (axis 1), x per-tensor int8 zero 0
        long k = 4;
        long n = 3;
        byte[] wq = new byte[(int) (k * n)];
        random.nextBytes(wq);
        float[] ws = {0.05f, 0.02f, 0.04f};
        float[] dequantised = new float[wq.length];
        for (int i = 0; i < wq.length; i++) {
            dequantised[i] = wq[i] * ws[(int) (i % n)];
        }
        INDArray x = Nd4j.rand(DataType.FLOAT, 2, k).subi(0.5f); // within ±127 · 0.01
        INDArray quantised = gradient(13, x, (g, b) -> {
            g.addInitializer(ints("Wq", TensorProto.DataType.INT8_VALUE, wq, k, n));
            g.addInitializer(ints("zx", TensorProto.DataType.INT8_VALUE, new byte[] {0}));
            String sx = b.constantFloats(new float[] {0.01f});
            String xq = b.op("QuantizeLinear", List.of("x", sx, "zx"));
            String xd = b.op("DequantizeLinear", List.of(xq, sx, "zx"));
            String w = b.op("DequantizeLinear", List.of("Wq", b.constantFloats(ws, n)), Attr.i("axis", 1));
            return b.op("MatMul", List.of(xd, w));
        });
        INDArray twin = gradient(13, x, (g, b) -> b.op("MatMul", List.of("x", b.constantFloats(dequantised, k, n))));
        assertClose(twin, quantised, 1e-5);
    }

    @Test
    void aDynamicQuantisersScaleCarriesNoGradient() {
        OnnxGraph g = OnnxGraph.create(11, "dql");
        g.append("t", b -> {
            b.input("x", ElemTypes.FLOAT, 2, 3);
            String[] q = {"xq", "xs", "xz"};
            b.opN("DynamicQuantizeLinear", List.of("x"), q);
        });
        var node = g.nodes().get(0);
        ElemTypes types = new ElemTypes(g);
        assertEquals(ElemTypes.UINT8, types.of("xq"));
        assertEquals(ElemTypes.FLOAT, types.of("xs"));
        assertEquals(List.of(true, false, false), List.of(GradRules.differentiable(node, 0, types),
                GradRules.differentiable(node, 1, types), GradRules.differentiable(node, 2, types)));
    }

    /**
     * An int8 weight Wq [6, 5] with a zero point and a scale per column, as onnxruntime's quantiser stores a
     * Linear's, as initializers {@code Wq}, {@code Wz}, {@code Ws}; and its float value (Wq − Wz) · Ws.
     */
    private record Int8Weight(byte[] wq, byte[] wz, float[] ws) {
        static Int8Weight random(Random random) {
            byte[] wq = new byte[6 * 5];
            random.nextBytes(wq);
            return new Int8Weight(wq, new byte[] {3, -2, 0, 7, -5}, new float[] {0.02f, 0.01f, 0.03f, 0.015f, 0.025f});
        }

        long k() {
            return wq.length / ws.length;
        }

        long n() {
            return ws.length;
        }

        void addTo(OnnxGraph g) {
            g.addInitializer(ints("Wq", TensorProto.DataType.INT8_VALUE, wq, k(), n()));
            g.addInitializer(ints("Wz", TensorProto.DataType.INT8_VALUE, wz, n()));
            g.addInitializer(floats("Ws", ws, n()));
        }

        /** An input [2, 3, k] in [-2, 2]. */
        INDArray input() {
            return Nd4j.rand(DataType.FLOAT, 2, 3, k()).subi(0.5f).muli(4);
        }

        /** The gradient of the float twin, x · (Wq − Wz) · Ws. */
        INDArray twinGradient(INDArray x) {
            return gradient(11, x, (g, b) -> b.op("MatMul", List.of("x", b.constantFloats(dequantised(), k(), n()))));
        }

        float[] dequantised() {
            float[] d = new float[wq.length];
            for (int i = 0; i < wq.length; i++) {
                d[i] = (wq[i] - wz[(int) (i % n())]) * ws[(int) (i % n())];
            }
            return d;
        }
    }

    /** d Σ (y ⊙ W) / d x for the graph {@code body} builds on input {@code x} (W fixed by the seed). */
    private static INDArray gradient(int opset, INDArray x, BiFunction<OnnxGraph, SubgraphBuilder, String> body) {
        OnnxGraph g = OnnxGraph.create(opset, "quantised");
        String[] loss = new String[1];
        long[] xs = x.shape();
        g.append("t", b -> {
            b.input("x", ElemTypes.FLOAT, xs);
            loss[0] = body.apply(g, b);
        });
        Map<String, INDArray> feeds = new LinkedHashMap<>();
        feeds.put("x", x);
        g.exposeOutput(loss[0], ElemTypes.FLOAT);
        long[] yShape = compile(g).run(feeds, List.of(loss[0])).get(loss[0]).shape();
        Nd4j.getRandom().setSeed(21);
        INDArray w = Nd4j.rand(DataType.FLOAT, yShape).subi(0.5f).muli(2);
        String y = loss[0];
        g.append("loss", b -> {
            String wi = b.input("W", ElemTypes.FLOAT, yShape);
            loss[0] = b.op("ReduceSum", List.of(b.op("Mul", List.of(y, wi))), Attr.i("keepdims", 0));
        });
        g.exposeOutput(loss[0], ElemTypes.FLOAT);
        feeds.put("W", w);
        GradientGraph gg = GradientBuilder.build(g, loss[0], List.of("x"), ShapeProbe.probe(g, feeds));
        return compile(gg.graph()).run(feeds, new ArrayList<>(gg.gradients().values()))
                .get(gg.gradients().get("x"));
    }

    private static CompiledGraph compile(OnnxGraph g) {
        return new CompiledGraph(g, g.fingerprint(), OrtRuntime.shared());
    }

    private static TensorProto ints(String name, int type, byte[] values, long... dims) {
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(type)
                .setRawData(ByteString.copyFrom(values));
        for (long d : dims) {
            t.addDims(d);
        }
        return t.build();
    }

    private static TensorProto floats(String name, float[] values, long... dims) {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buf.putFloat(v);
        }
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(ElemTypes.FLOAT)
                .setRawData(ByteString.copyFrom(buf.array()));
        for (long d : dims) {
            t.addDims(d);
        }
        return t.build();
    }

    private static void assertClose(INDArray expected, INDArray actual, double tol) {
        assertEquals(List.of(expected.shape().length), List.of(actual.shape().length));
        double scale = Math.max(1, expected.amaxNumber().doubleValue());
        double diff = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
        assertTrue(diff <= tol * scale, "straight-through gradient differs from the dequantised twin's by " + diff
                + "\nexpected " + expected + "\nactual   " + actual);
    }
}
