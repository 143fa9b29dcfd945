package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.Attr;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/** The loss builders' gradients against finite differences (the fixtures check the probe and token losses too). */
class LossAndSplitTest {
    @Test
    void classificationCrossEntropy() {
        new FiniteDifference(17, true).input("x", -2, 2, 3, 4).data("labels", Nd4j.createFromArray(new long[][] {{1},
                {3}, {0}})).body((b, n) -> {
                    String lsm = b.op("LogSoftmax", List.of(n.get("x")), Attr.i("axis", 1));
                    return b.op("GatherElements", List.of(lsm, n.get("labels")), Attr.i("axis", 1));
                }).check(1e-7, 1e-6);
    }

    @Test
    void maskedTokenSelectionThroughMulAndReduceSum() {
        new FiniteDifference(14, true).input("h", -1, 1, 2, 3, 4).input("p", -1, 1, 4, 1)
                .data("m", Nd4j.createFromArray(new double[][][] {{{1}, {0}, {1}}, {{1}, {1}, {0}}}))
                .body((b, n) -> b.op("ReduceSum", List.of(b.op("Mul", List.of(b.op("MatMul",
                        List.of(n.get("h"), n.get("p"))), n.get("m")))), Attr.i("keepdims", 0))).check(1e-7, 1e-6);
    }

    @Test
    void aMaskBuiltFromInputsIsRecomputedInTheSuffixInsteadOfCrossingTheFrontier() {
        // h = Relu(x) is frozen work, the site Where(m ∧ f, h·w, h) is trainable (w a source); m ∧ f is [2, 3, 4]
        dev.jreft.hooks.graph.OnnxGraph g = dev.jreft.hooks.graph.OnnxGraph.create(17, "split");
        g.append("t", b -> {
            String x = b.input("x", dev.jreft.hooks.graph.ElemTypes.FLOAT, 2, 3, 4);
            String m = b.input("m", dev.jreft.hooks.graph.ElemTypes.BOOL, 2, 3, 1);
            String f = b.input("f", dev.jreft.hooks.graph.ElemTypes.BOOL, 4);
            String w = b.input("w", dev.jreft.hooks.graph.ElemTypes.FLOAT, 4);
            String h = b.op("Relu", List.of(x));
            String mask = b.op("And", List.of(m, f));
            b.opTo("y", "Where", List.of(mask, b.op("Mul", List.of(h, w)), h));
            b.expose("y");
        });
        java.util.Map<String, long[]> shapes = java.util.Map.of();
        PrefixSplit split = PrefixSplit.split(g, List.of("w"), shapes);
        String and = g.nodes().stream().filter(n -> n.getOpType().equals("And")).findFirst().orElseThrow()
                .getOutput(0);
        String relu = g.nodes().stream().filter(n -> n.getOpType().equals("Relu")).findFirst().orElseThrow()
                .getOutput(0);
        org.junit.jupiter.api.Assertions.assertEquals(List.of(relu), split.frontier());
        org.junit.jupiter.api.Assertions.assertTrue(split.suffix().inputNames().containsAll(List.of("m", "f", "w")),
                split.suffix().inputNames().toString());
        org.junit.jupiter.api.Assertions.assertTrue(split.prefix().nodes().stream()
                .noneMatch(n -> n.getOutputList().contains(and)), "the prefix no longer computes the mask");
    }
}
