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
    void aGraphWhoseFirstNodeReadsASourceIsNotSplit() {
        // y = Relu(x·w), w a source: no frozen node runs first (an MLP's first MatMul reads its weight)
        dev.jreft.hooks.graph.OnnxGraph g = dev.jreft.hooks.graph.OnnxGraph.create(17, "no-prefix");
        g.append("t", b -> {
            String x = b.input("x", dev.jreft.hooks.graph.ElemTypes.FLOAT, 2, 4);
            String w = b.input("w", dev.jreft.hooks.graph.ElemTypes.FLOAT, 4, 3);
            b.opTo("y", "Relu", List.of(b.op("MatMul", List.of(x, w))));
            b.expose("y");
        });
        PrefixSplit split = PrefixSplit.split(g, List.of("w"), java.util.Map.of());
        org.junit.jupiter.api.Assertions.assertEquals(List.of(), split.frontier());
        org.junit.jupiter.api.Assertions.assertSame(g, split.suffix());
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

    @Test
    void theFrozenPrefixCacheStaysWithinItsByteBound() {
        // h = Relu(x) is the frozen prefix (a 4 MB frontier per batch), y = Σ h·w with w trained
        dev.jreft.hooks.graph.OnnxGraph g = dev.jreft.hooks.graph.OnnxGraph.create(17, "prefix-cache");
        g.append("t", b -> {
            String x = b.input("x", dev.jreft.hooks.graph.ElemTypes.FLOAT, 1, 1024, 1024);
            String w = b.input("w", dev.jreft.hooks.graph.ElemTypes.FLOAT, 1024);
            b.opTo("y", "Mul", List.of(b.op("Relu", List.of(x)), w));
            b.expose("y");
        });
        java.util.function.Function<dev.jreft.hooks.graph.OnnxGraph, String> loss = gr -> {
            String[] name = new String[1];
            gr.append("loss", b -> name[0] = b.op("ReduceSum", List.of("y"), Attr.i("keepdims", 0)));
            return name[0];
        };
        org.nd4j.linalg.api.ndarray.INDArray w = Nd4j.ones(org.nd4j.linalg.api.buffer.DataType.FLOAT, 1024);
        GraphGradients.Result first = null;
        org.nd4j.linalg.api.ndarray.INDArray x0 = Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT, 1, 1024, 1024);
        for (int i = 0; i < 12; i++) { // 12 batches (48 MB of frontiers), each seen twice: kept from the second
            org.nd4j.linalg.api.ndarray.INDArray x = i == 0 ? x0 : Nd4j.rand(org.nd4j.linalg.api.buffer.DataType.FLOAT,
                    1, 1024, 1024);
            for (int seen = 0; seen < (i == 0 ? 3 : 2); seen++) { // the first batch a third time: from the cache
                GraphGradients.Result r = GraphGradients.compute("prefix-cache", "sum", g,
                        java.util.Map.of("x", x, "w", w), loss, java.util.Map.of(), List.of("w"),
                        dev.jreft.hooks.runtime.OrtRuntime.shared());
                if (i == 0 && first == null) {
                    first = r;
                } else if (i == 0) { // the same gradient whether the frontier was computed (and freed) or cached
                    org.junit.jupiter.api.Assertions.assertEquals(first.loss(), r.loss(), 1e-3 * Math.abs(first.loss()));
                }
            }
            org.junit.jupiter.api.Assertions.assertTrue(GraphGradients.cachedPrefixBytes()
                    <= GraphGradients.prefixCacheBound(), "cache holds " + GraphGradients.cachedPrefixBytes());
        }
        org.junit.jupiter.api.Assertions.assertTrue(GraphGradients.cachedPrefixBytes() > 0);
        // the first batch again (evicted by now) gives the same gradient
        GraphGradients.Result again = GraphGradients.compute("prefix-cache", "sum", g, java.util.Map.of("x", x0, "w", w),
                loss, java.util.Map.of(), List.of("w"), dev.jreft.hooks.runtime.OrtRuntime.shared());
        org.junit.jupiter.api.Assertions.assertEquals(first.loss(), again.loss(), 1e-3 * Math.abs(first.loss()));
    }
}
