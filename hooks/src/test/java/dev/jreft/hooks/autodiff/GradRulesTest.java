package dev.jreft.hooks.autodiff;

import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.graph.Attr;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every gradient rule against a float64 finite-difference Jacobian (Erf: float32, looser). */
class GradRulesTest {
    static final double ATOL = 1e-7;
    static final double RTOL = 1e-6;

    static FiniteDifference fd() {
        return new FiniteDifference(17, true);
    }

    static void unary(String op, double lo, double hi) {
        fd().input("x", lo, hi, 2, 3).body((b, n) -> b.op(op, List.of(n.get("x")))).check(ATOL, RTOL);
    }

    static void binary(String op, long[] a, long[] c, double lo, double hi) {
        fd().input("a", lo, hi, a).input("b", lo, hi, c)
                .body((b, n) -> b.op(op, List.of(n.get("a"), n.get("b")))).check(ATOL, RTOL);
    }

    @Test
    void addSubMulDivWithBroadcastingBothWays() {
        for (String op : List.of("Add", "Sub", "Mul", "Div")) {
            binary(op, new long[] {2, 3, 4}, new long[] {4}, 0.5, 2);
            binary(op, new long[] {3, 1}, new long[] {2, 1, 4}, 0.5, 2);
            binary(op, new long[] {2, 3}, new long[] {2, 3}, 0.5, 2);
        }
    }

    @Test
    void unaryOps() {
        unary("Neg", -2, 2);
        unary("Sqrt", 0.5, 3);
        unary("Reciprocal", 0.5, 3);
        unary("Exp", -1, 1);
        unary("Log", 0.5, 3);
        unary("Tanh", -2, 2);
        unary("Sigmoid", -3, 3);
        unary("Relu", 0.1, 2);
        fd().input("x", -2, -0.1, 2, 3).body((b, n) -> b.op("Relu", List.of(n.get("x")))).check(ATOL, RTOL);
        unary("Identity", -2, 2);
    }

    @Test
    void erfInFloat32() {
        // ORT has no double Erf kernel: float32 with a looser tolerance
        new FiniteDifference(17, false).input("x", -1.5, 1.5, 2, 3)
                .body((b, n) -> b.op("Erf", List.of(n.get("x")))).check(2e-3, 2e-2);
    }

    @Test
    void powWithConstantExponent() {
        fd().input("x", 0.5, 2, 2, 3).body((b, n) -> b.op("Pow", List.of(n.get("x"), b.scalar(3, fd().elemType()))))
                .check(ATOL, RTOL);
        fd().input("x", 0.5, 2, 2, 3).body((b, n) -> b.op("Pow", List.of(n.get("x"), b.scalar(0.5, fd().elemType()))))
                .check(ATOL, RTOL);
        // exponent 2 (LayerNorm's variance) takes the Mul form; negative bases included
        fd().input("x", -2, 2, 2, 3).body((b, n) -> b.op("Pow", List.of(n.get("x"), b.scalar(2, fd().elemType()))))
                .check(ATOL, RTOL);
    }

    @Test
    void castBetweenFloatTypes() {
        fd().input("x", -2, 2, 2, 3).body((b, n) -> b.op("Cast", List.of(b.op("Cast", List.of(n.get("x")),
                Attr.i("to", 1))), Attr.i("to", 11))).eps(1e-2).check(1e-5, 1e-4); // linear: a large step is exact
    }

    @Test
    void whereRoutesTheGradientAndStopsAtTheCondition() {
        fd().input("a", -2, 2, 2, 3).input("b", -2, 2, 3)
                .data("c", Nd4j.createFromArray(new boolean[][] {{true, false, true}, {false, false, true}}))
                .body((b, n) -> b.op("Where", List.of(n.get("c"), n.get("a"), n.get("b")))).check(ATOL, RTOL);
    }

    @Test
    void softmaxAndLogSoftmax() {
        for (String op : List.of("Softmax", "LogSoftmax")) {
            fd().input("x", -2, 2, 2, 3, 4).body((b, n) -> b.op(op, List.of(n.get("x")), Attr.i("axis", -1)))
                    .check(ATOL, RTOL);
            fd().input("x", -2, 2, 2, 3, 4).body((b, n) -> b.op(op, List.of(n.get("x")), Attr.i("axis", 1)))
                    .check(ATOL, RTOL);
        }
        // opset 11 semantics (flatten at the axis) coincide with the last axis
        new FiniteDifference(11, true).input("x", -2, 2, 2, 3, 4)
                .body((b, n) -> b.op("Softmax", List.of(n.get("x")), Attr.i("axis", 2))).check(ATOL, RTOL);
    }

    @Test
    void shapeOps() {
        fd().input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("Reshape", List.of(n.get("x"),
                b.constantInts(new long[] {6, 4}, 2)))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("Transpose", List.of(n.get("x")),
                Attr.ints("perm", 2, 0, 1))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 1, 4).body((b, n) -> b.op("Squeeze", List.of(n.get("x"),
                b.constantInts(new long[] {1}, 1)))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 4).body((b, n) -> b.op("Unsqueeze", List.of(n.get("x"),
                b.constantInts(new long[] {0}, 1)))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("Flatten", List.of(n.get("x")), Attr.i("axis", 1)))
                .check(ATOL, RTOL);
        fd().input("x", -1, 1, 3, 1).body((b, n) -> b.op("Expand", List.of(n.get("x"),
                b.constantInts(new long[] {2, 3, 4}, 3)))).check(ATOL, RTOL);
    }

    @Test
    void sliceWithNegativeAndClampedBounds() {
        fd().input("x", -1, 1, 3, 5).body((b, n) -> b.op("Slice", List.of(n.get("x"),
                b.constantInts(new long[] {1, -4}, 2), b.constantInts(new long[] {100, -1}, 2),
                b.constantInts(new long[] {0, 1}, 2)))).check(ATOL, RTOL);
    }

    @Test
    void splitWithAnUnusedOutputAndConcat() {
        fd().input("x", -1, 1, 2, 6).body((b, n) -> {
            String[] parts = {b.name("p0"), b.name("p1"), b.name("p2")};
            b.opN("Split", List.of(n.get("x"), b.constantInts(new long[] {1, 2, 3}, 3)), parts, Attr.i("axis", 1));
            return b.op("Concat", List.of(parts[2], parts[0]), Attr.i("axis", 1)); // parts[1] unused
        }).check(ATOL, RTOL);
    }

    @Test
    void reductions() {
        fd().input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("ReduceSum", List.of(n.get("x"),
                b.constantInts(new long[] {1}, 1)), Attr.i("keepdims", 0))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("ReduceMean", List.of(n.get("x")),
                Attr.ints("axes", -1, 0), Attr.i("keepdims", 1))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 3).body((b, n) -> b.op("ReduceSum", List.of(n.get("x")), Attr.i("keepdims", 0)))
                .check(ATOL, RTOL);
        new FiniteDifference(11, true).input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("ReduceSum",
                List.of(n.get("x")), Attr.ints("axes", 2), Attr.i("keepdims", 1))).check(ATOL, RTOL);
    }

    @Test
    void matMulWithBatchBroadcast() {
        binary("MatMul", new long[] {2, 3, 4}, new long[] {4, 5}, -1, 1);
        binary("MatMul", new long[] {3, 4}, new long[] {2, 4, 5}, -1, 1);
        binary("MatMul", new long[] {2, 1, 3, 4}, new long[] {3, 4, 2}, -1, 1);
    }

    @Test
    void gemmAllTranspositions() {
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                long[] a = ta == 1 ? new long[] {4, 3} : new long[] {3, 4};
                long[] c = tb == 1 ? new long[] {5, 4} : new long[] {4, 5};
                int fta = ta;
                int ftb = tb;
                fd().input("a", -1, 1, a).input("b", -1, 1, c).input("c", -1, 1, 5)
                        .body((b, n) -> b.op("Gemm", List.of(n.get("a"), n.get("b"), n.get("c")),
                                Attr.i("transA", fta), Attr.i("transB", ftb), Attr.f("alpha", 0.7f),
                                Attr.f("beta", 1.3f))).check(ATOL, RTOL);
            }
        }
    }

    @Test
    void layerNormalization() {
        fd().input("x", -2, 2, 2, 3, 5).input("s", 0.5, 1.5, 5).input("bias", -1, 1, 5)
                .body((b, n) -> b.op("LayerNormalization", List.of(n.get("x"), n.get("s"), n.get("bias")),
                        Attr.f("epsilon", 1e-5f))).check(1e-6, 1e-5);
    }

    /**
     * A residual sum under a layer norm, LN(a + r), becomes onnxruntime's SkipLayerNormalization (the sum kept as its
     * output 3, read again after it here); its rule recomputes the statistics. Float32 (ORT's kernel), looser.
     */
    @Test
    void residualSumUnderALayerNormIsFusedIntoSkipLayerNormalizationAndDifferentiated() {
        int[] fused = {0};
        long[] shape = {2, 3, 5};
        new FiniteDifference(17, false).input("a", -2, 2, shape).input("r", -2, 2, shape).input("s", 0.5, 1.5, 5)
                .input("bias", -1, 1, 5)
                .body((b, n) -> {
                    String sum = b.op("Add", List.of(n.get("a"), n.get("r")));
                    String y = b.op("LayerNormalization", List.of(sum, n.get("s"), n.get("bias")));
                    return b.op("Add", List.of(y, b.op("Mul", List.of(sum, sum))));
                })
                .transform(g -> {
                    java.util.Map<String, long[]> shapes = new java.util.HashMap<>();
                    g.nodes().forEach(x -> x.getOutputList().forEach(o -> shapes.put(o, shape)));
                    shapes.put("a", shape);
                    shapes.put("r", shape);
                    fused[0] = Fusions.skipLayerNorms(g, List.of(), shapes);
                    assertTrue(g.nodes().stream().noneMatch(x -> x.getOpType().equals("LayerNormalization")));
                })
                .check(2e-3, 2e-2);
        org.junit.jupiter.api.Assertions.assertEquals(1, fused[0]);
        // as ORT's optimiser writes it: the bias input, no sum output (the rule adds it up again)
        new FiniteDifference(17, false).importing(GradRules.MICROSOFT).input("a", -2, 2, shape)
                .input("r", -2, 2, shape).input("s", 0.5, 1.5, 5).input("beta", -1, 1, 5).input("bias", -1, 1, 5)
                .body((b, n) -> b.op(GradRules.MICROSOFT, "SkipLayerNormalization", List.of(n.get("a"), n.get("r"),
                        n.get("s"), n.get("beta"), n.get("bias")), Attr.f("epsilon", 1e-5f)))
                .check(2e-3, 2e-2);
    }

    /** torch's layer norm at opset 11, op by op: (x − μ) / √(mean((x − μ)²) + ε) · s + bias. */
    static String decomposedLayerNorm(dev.jreft.hooks.graph.SubgraphBuilder b, java.util.Map<String, String> n,
                                      int type) {
        String x = n.get("x");
        String mu = b.op("ReduceMean", List.of(x), Attr.ints("axes", -1));
        String xc = b.op("Sub", List.of(x, mu));
        String var = b.op("ReduceMean", List.of(b.op("Pow", List.of(xc, b.scalar(2, type)))), Attr.ints("axes", -1));
        String std = b.op("Sqrt", List.of(b.op("Add", List.of(var, b.scalar(1e-5, type)))));
        return b.op("Add", List.of(b.op("Mul", List.of(b.op("Div", List.of(xc, std)), n.get("s"))), n.get("bias")));
    }

    @Test
    void decomposedLayerNormIsFusedAndDifferentiatedFromItsSavedStatistics() {
        // float32 (ORT's fused kernel keeps float statistics), so a looser tolerance as for Erf
        int[] fused = {0};
        FiniteDifference fd = new FiniteDifference(11, false);
        fd.input("x", -2, 2, 2, 3, 5).input("s", 0.5, 1.5, 5).input("bias", -1, 1, 5)
                .body((b, n) -> decomposedLayerNorm(b, n, fd.elemType()))
                .transform(g -> {
                    fused[0] = Fusions.layerNorms(g, List.of());
                    assertTrue(g.nodes().stream().noneMatch(x -> x.getOpType().equals("Pow")), "the ops are gone");
                })
                .check(2e-3, 2e-2);
        org.junit.jupiter.api.Assertions.assertEquals(1, fused[0]);
        // a kept intermediate (a hook on the centred input, say) leaves the ops as they are
        FiniteDifference kept = new FiniteDifference(11, false);
        kept.input("x", -2, 2, 2, 3, 5).input("s", 0.5, 1.5, 5).input("bias", -1, 1, 5)
                .body((b, n) -> decomposedLayerNorm(b, n, kept.elemType()))
                .transform(g -> org.junit.jupiter.api.Assertions.assertEquals(0, Fusions.layerNorms(g,
                        List.of(g.nodes().stream().filter(x -> x.getOpType().equals("Sub")).findFirst().orElseThrow()
                                .getOutput(0)))))
                .check(2e-3, 2e-2);
    }

    @Test
    void exactGeluInBothOfTorchsOrdersIsFusedAndDifferentiated() {
        for (boolean halfFirst : new boolean[] {true, false}) {
            int[] fused = {0};
            FiniteDifference fd = new FiniteDifference(11, false); // ORT's Gelu and Erf: float32, looser
            fd.input("x", -3, 3, 2, 3, 5).body((b, n) -> {
                String x = n.get("x");
                String onePlusErf = b.op("Add", List.of(b.op("Erf", List.of(b.op("Div", List.of(x,
                        b.scalar(Math.sqrt(2), fd.elemType()))))), b.scalar(1, fd.elemType())));
                return halfFirst
                        ? b.op("Mul", List.of(b.op("Mul", List.of(x, b.scalar(0.5, fd.elemType()))), onePlusErf))
                        : b.op("Mul", List.of(b.op("Mul", List.of(x, onePlusErf)), b.scalar(0.5, fd.elemType())));
            }).transform(g -> {
                fused[0] = Fusions.gelus(g, List.of());
                assertTrue(g.nodes().stream().noneMatch(x -> x.getOpType().equals("Erf")), "the ops are gone");
            }).check(2e-3, 2e-2);
            org.junit.jupiter.api.Assertions.assertEquals(1, fused[0], "half first: " + halfFirst);
        }
    }

    /**
     * A product of two float activations (attention's scores and context) differentiates into FusedMatMul with
     * transA / transB, no Transpose that ORT could merge with the forward's head transposes; float64 (no FusedMatMul
     * kernel) keeps Transpose + MatMul. Both against finite differences.
     */
    @Test
    void productsOfFloatActivationsBackwardAsFusedMatMul() {
        for (boolean float64 : new boolean[] {false, true}) {
            java.util.Map<String, Long> ops = new java.util.HashMap<>();
            new FiniteDifference(17, float64).input("a", -1, 1, 2, 3, 4, 5).input("c", -1, 1, 2, 3, 5, 4)
                    .body((b, n) -> b.op("MatMul", List.of(n.get("a"), n.get("c"))))
                    .backward(g -> g.nodes().forEach(x -> ops.merge(x.getOpType(), 1L, Long::sum)))
                    .check(float64 ? ATOL : 2e-3, float64 ? RTOL : 2e-2);
            org.junit.jupiter.api.Assertions.assertEquals(float64 ? null : 2L, ops.get("FusedMatMul"), "float64 "
                    + float64 + ": " + ops);
            org.junit.jupiter.api.Assertions.assertEquals(float64 ? 2L : null, ops.get("Transpose"), "float64 "
                    + float64 + ": " + ops);
        }
    }

    /** onnxruntime's optimisers write BiasGelu, FastGelu and FusedMatMul (float32 only on CPU, so looser). */
    @Test
    void onnxruntimesBiasGeluFastGeluAndFusedMatMul() {
        new FiniteDifference(11, false).importing(GradRules.MICROSOFT).input("x", -3, 3, 2, 3, 5).input("b", -1, 1, 5)
                .body((b, n) -> b.op(GradRules.MICROSOFT, "BiasGelu", List.of(n.get("x"), n.get("b"))))
                .check(2e-3, 2e-2);
        new FiniteDifference(11, false).importing(GradRules.MICROSOFT).input("x", -3, 3, 2, 3, 5).input("b", -1, 1, 5)
                .body((b, n) -> b.op(GradRules.MICROSOFT, "FastGelu", List.of(n.get("x"), n.get("b"))))
                .check(2e-3, 2e-2);
        new FiniteDifference(11, false).importing(GradRules.MICROSOFT).input("x", -3, 3, 2, 3, 5)
                .body((b, n) -> b.op(GradRules.MICROSOFT, "FastGelu", List.of(n.get("x")))).check(2e-3, 2e-2);
        // far out, where the rule's exp(x²/2) overflows: slopes 1 and 0, not NaN
        for (double lo : new double[] {14, -20}) {
            new FiniteDifference(11, false).importing(GradRules.MICROSOFT).input("x", lo, lo + 6, 2, 3)
                    .body((b, n) -> b.op(GradRules.MICROSOFT, "Gelu", List.of(n.get("x")))).check(2e-3, 2e-2);
        }
        for (int t = 0; t < 4; t++) {
            boolean ta = (t & 1) == 1;
            boolean tb = (t & 2) == 2;
            new FiniteDifference(11, false).importing(GradRules.MICROSOFT)
                    .input("a", -1, 1, ta ? new long[] {2, 4, 3} : new long[] {2, 3, 4})
                    .input("c", -1, 1, tb ? new long[] {2, 5, 4} : new long[] {2, 4, 5})
                    .body((b, n) -> b.op(GradRules.MICROSOFT, "FusedMatMul", List.of(n.get("a"), n.get("c")),
                            Attr.f("alpha", 0.25f), Attr.i("transA", ta ? 1 : 0), Attr.i("transB", tb ? 1 : 0)))
                    .check(2e-3, 2e-2);
        }
    }

    @Test
    void gatherElementsWithUniqueAndRepeatedIndices() {
        fd().input("x", -1, 1, 2, 3, 4).data("i", Nd4j.createFromArray(new long[][][] {{{1}, {3}, {0}}, {{2}, {2}, {-1}}}))
                .body((b, n) -> b.op("GatherElements", List.of(n.get("x"), n.get("i")), Attr.i("axis", 2)))
                .check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 4).data("i", Nd4j.createFromArray(new long[][] {{1, 1, 3}, {0, 2, 0}}))
                .body((b, n) -> b.op("GatherElements", List.of(n.get("x"), n.get("i")), Attr.i("axis", 1)))
                .check(ATOL, RTOL);
    }

    @Test
    void scatterNDAndGatherND() {
        var idx = Nd4j.createFromArray(new long[][] {{0, 2}, {1, 0}, {1, 3}});
        fd().input("x", -1, 1, 2, 4, 3).input("u", -1, 1, 3, 3).data("i", idx)
                .body((b, n) -> b.op("ScatterND", List.of(n.get("x"), n.get("i"), n.get("u")))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 4, 3).input("u", -1, 1, 3, 3).data("i", idx)
                .body((b, n) -> b.op("ScatterND", List.of(n.get("x"), n.get("i"), n.get("u")),
                        Attr.s("reduction", "add"))).check(ATOL, RTOL);
        // repeated and negative indices: contributions add up
        fd().input("x", -1, 1, 2, 4, 3).data("i", Nd4j.createFromArray(new long[][] {{0, 2}, {0, 2}, {-1, -1}}))
                .body((b, n) -> b.op("GatherND", List.of(n.get("x"), n.get("i")))).check(ATOL, RTOL);
    }

    @Test
    void gatherWithRepeatedNegativeAndScalarIndices() {
        // axis 0, 2-D indices with a repeat and a negative index
        fd().input("x", -1, 1, 4, 3).data("i", Nd4j.createFromArray(new long[][] {{1, 1}, {-1, 0}}))
                .body((b, n) -> b.op("Gather", List.of(n.get("x"), n.get("i")), Attr.i("axis", 0))).check(ATOL, RTOL);
        // axis 1 of a rank-3 tensor: 2 and -2 (= 2) add up
        fd().input("x", -1, 1, 2, 4, 3).data("i", Nd4j.createFromArray(new long[] {2, -1, 0, -2}))
                .body((b, n) -> b.op("Gather", List.of(n.get("x"), n.get("i")), Attr.i("axis", 1))).check(ATOL, RTOL);
        // axis -1 with 2-D indices
        fd().input("x", -1, 1, 2, 3, 4).data("i", Nd4j.createFromArray(new long[][] {{3, 0, 3}, {-4, 1, 1}}))
                .body((b, n) -> b.op("Gather", List.of(n.get("x"), n.get("i")), Attr.i("axis", -1))).check(ATOL, RTOL);
        // scalar (rank-0) indices, axis 0 and axis 1
        fd().input("x", -1, 1, 4, 3).body((b, n) -> b.op("Gather", List.of(n.get("x"), b.constantInts(new long[] {-2})),
                Attr.i("axis", 0))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 4, 3).body((b, n) -> b.op("Gather", List.of(n.get("x"),
                b.constantInts(new long[] {1})), Attr.i("axis", 1))).check(ATOL, RTOL);
        // before opset 16 (no ScatterND reduction=add) the same sums come from a one-hot product: BERT's opset-14
        // embedding lookups, with repeats, negatives and 2-D indices, on axis 0 and axis 1
        new FiniteDifference(14, true).input("x", -1, 1, 4, 3).data("i", Nd4j.createFromArray(new long[][] {{1, 1},
                {-1, 0}})).body((b, n) -> b.op("Gather", List.of(n.get("x"), n.get("i")))).check(ATOL, RTOL);
        new FiniteDifference(14, true).input("x", -1, 1, 2, 4, 3).data("i", Nd4j.createFromArray(new long[] {2, -1,
                0, -2})).body((b, n) -> b.op("Gather", List.of(n.get("x"), n.get("i")), Attr.i("axis", 1)))
                .check(ATOL, RTOL);
    }

    @Test
    void maxAndMinRouteToTheSelectedInputWithBroadcasting() {
        for (String op : List.of("Max", "Min")) {
            fd().input("a", -1, 1, 2, 3, 4).input("b", -1, 1, 4).input("c", -1, 1, 3, 1)
                    .body((b, n) -> b.op(op, List.of(n.get("a"), n.get("b"), n.get("c")))).check(ATOL, RTOL);
            binary(op, new long[] {2, 3}, new long[] {2, 3}, -1, 1);
            fd().input("a", -1, 1, 2, 3).body((b, n) -> b.op(op, List.of(n.get("a")))).check(ATOL, RTOL);
        }
    }

    @Test
    void clipInsideAndOutsideTheRangeAndOptionalBounds() {
        int t = fd().elemType();
        // values on both sides of each bound
        fd().input("x", -2, 2, 3, 4).body((b, n) -> b.op("Clip", List.of(n.get("x"), b.scalar(-0.5, t),
                b.scalar(0.7, t)))).check(ATOL, RTOL);
        // only max (min omitted), only min
        fd().input("x", -2, 2, 3, 4).body((b, n) -> b.op("Clip", List.of(n.get("x"), "", b.scalar(0.3, t))))
                .check(ATOL, RTOL);
        fd().input("x", -2, 2, 3, 4).body((b, n) -> b.op("Clip", List.of(n.get("x"), b.scalar(-0.3, t))))
                .check(ATOL, RTOL);
        fd().input("x", -2, 2, 3, 4).body((b, n) -> b.op("Clip", List.of(n.get("x")))).check(ATOL, RTOL);
        // opset 6 bounds as attributes (float32 kernel): all inside, then all above max
        new FiniteDifference(10, false).input("x", 0.1, 0.9, 3, 4).body((b, n) -> b.op("Clip", List.of(n.get("x")),
                Attr.f("min", 0f), Attr.f("max", 1f))).check(2e-3, 2e-2);
        new FiniteDifference(10, false).input("x", 1.1, 2, 3, 4).body((b, n) -> b.op("Clip", List.of(n.get("x")),
                Attr.f("min", 0f), Attr.f("max", 1f))).check(2e-3, 2e-2);
        // a differentiable bound is rejected
        var e = assertThrows(NoGradientRuleException.class, () -> fd().input("x", -2, 2, 3, 4).input("lo", -1, 0)
                .body((b, n) -> b.op("Clip", List.of(n.get("x"), n.get("lo")))).check(ATOL, RTOL));
        assertTrue(e.getMessage().contains("min"), e.getMessage());
    }

    @Test
    void tileSumsOverTheTiles() {
        fd().input("x", -1, 1, 2, 3, 2).body((b, n) -> b.op("Tile", List.of(n.get("x"),
                b.constantInts(new long[] {3, 1, 2}, 3)))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 3).body((b, n) -> b.op("Tile", List.of(n.get("x"),
                b.constantInts(new long[] {1, 1}, 2)))).check(ATOL, RTOL);
    }

    @Test
    void padConstantWithPositiveNegativeAndRuntimePads() {
        // pads and a differentiable constant value
        fd().input("x", -1, 1, 2, 3).input("c", -1, 1).body((b, n) -> b.op("Pad", List.of(n.get("x"),
                b.constantInts(new long[] {1, 0, 2, 1}, 4), n.get("c")))).check(ATOL, RTOL);
        // negative pads crop
        fd().input("x", -1, 1, 3, 4).body((b, n) -> b.op("Pad", List.of(n.get("x"),
                b.constantInts(new long[] {-1, 2, 1, -2}, 4)))).check(ATOL, RTOL);
        // pads fed at run time (not a constant)
        fd().input("x", -1, 1, 3, 4).data("p", Nd4j.createFromArray(new long[] {0, -1, 2, 1}))
                .body((b, n) -> b.op("Pad", List.of(n.get("x"), n.get("p")))).check(ATOL, RTOL);
        // opset 18 axes
        new FiniteDifference(18, true).input("x", -1, 1, 2, 3, 4).body((b, n) -> b.op("Pad", List.of(n.get("x"),
                b.constantInts(new long[] {1, -1, 2, 0}, 4), b.scalar(0.5, TensorProto.DataType.DOUBLE_VALUE),
                b.constantInts(new long[] {2, 0}, 2)))).check(ATOL, RTOL);
        // opset 10: pads as an attribute
        new FiniteDifference(10, true).input("x", -1, 1, 2, 3).body((b, n) -> b.op("Pad", List.of(n.get("x")),
                Attr.ints("pads", 0, 1, 2, 0), Attr.f("value", 0.25f))).check(ATOL, RTOL);
        var e = assertThrows(NoGradientRuleException.class, () -> fd().input("x", -1, 1, 3, 4)
                .body((b, n) -> b.op("Pad", List.of(n.get("x"), b.constantInts(new long[] {1, 1, 1, 1}, 4)),
                        Attr.s("mode", "reflect"))).check(ATOL, RTOL));
        assertTrue(e.getMessage().contains("reflect"), e.getMessage());
    }

    @Test
    void triluUpperAndLowerWithK() {
        fd().input("x", -1, 1, 3, 4).body((b, n) -> b.op("Trilu", List.of(n.get("x")))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 3, 4).body((b, n) -> b.op("Trilu", List.of(n.get("x"), b.constantInts(new long[] {-1})),
                Attr.i("upper", 0))).check(ATOL, RTOL);
        fd().input("x", -1, 1, 2, 3, 3).body((b, n) -> b.op("Trilu", List.of(n.get("x"),
                b.constantInts(new long[] {1})), Attr.i("upper", 1))).check(ATOL, RTOL);
    }

    static void einsum(String equation, long[]... shapes) {
        FiniteDifference f = fd();
        for (int i = 0; i < shapes.length; i++) {
            f.input("x" + i, -1, 1, shapes[i]);
        }
        f.body((b, n) -> b.op("Einsum", List.copyOf(n.values()), Attr.s("equation", equation))).check(ATOL, RTOL);
    }

    @Test
    void einsumOneTwoAndThreeOperands() {
        einsum("bij,bjk->bik", new long[] {2, 3, 4}, new long[] {2, 4, 5});
        einsum("ij,j->i", new long[] {3, 4}, new long[] {4});
        einsum("ij->ji", new long[] {3, 4});
        einsum("bhqd,bhkd->bhqk", new long[] {2, 2, 3, 4}, new long[] {2, 2, 5, 4});
        einsum("ij->i", new long[] {3, 4}); // j summed out: expanded back
        einsum("ij,jk->k", new long[] {3, 4}, new long[] {4, 2}); // i only in the first operand
        einsum("i,j->", new long[] {3}, new long[] {4});
        einsum("ij,jk", new long[] {3, 4}, new long[] {4, 2}); // implicit output "ik"
        einsum("...ij,jk->...ik", new long[] {2, 3, 4}, new long[] {4, 5});
        einsum("ab,bc,cd->ad", new long[] {2, 3}, new long[] {3, 4}, new long[] {4, 2});
        var e = assertThrows(NoGradientRuleException.class, () -> einsum("ii->i", new long[] {3, 3}));
        assertTrue(e.getMessage().contains("diagonal"), e.getMessage());
    }

    @Test
    void repeatedConsumersSum() {
        fd().input("x", 0.5, 2, 2, 3).body((b, n) -> {
            String x = n.get("x");
            String sq = b.op("Mul", List.of(x, x));
            return b.op("Add", List.of(b.op("Tanh", List.of(x)), b.op("Div", List.of(sq, x))));
        }).check(ATOL, RTOL);
    }

    @Test
    void anOpWithoutARuleIsAnErrorNamingItAndThePath() {
        var e = assertThrows(NoGradientRuleException.class, () -> fd().input("x", 0.1, 1, 2, 3)
                .body((b, n) -> b.op("Sin", List.of(n.get("x")))).check(ATOL, RTOL));
        assertTrue(e.getMessage().contains("no gradient rule for op 'Sin'"), e.getMessage());
        assertTrue(e.getMessage().contains("from source 'x'"), e.getMessage());
    }
}
