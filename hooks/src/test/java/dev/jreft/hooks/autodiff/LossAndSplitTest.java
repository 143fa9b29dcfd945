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
}
