package dev.jreft.analysis;

import dev.jreft.hooks.io.FixturesLocation;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The token loss and token probability metrics of a causal LM (the fixtures' GPT-2), patched and attributed. */
class TokenMetricTest {
    @Test
    void tokenMetricsReadTheLastTokenAndAttributeThroughTheCrossEntropy() {
        var dir = FixturesLocation.find();
        Assumptions.assumeTrue(dir.isPresent(), "reference fixtures not found at " + FixturesLocation.configured());
        HookedModel m = HookedModel.load(dir.get().resolve("models/gpt2/gpt2_op17.onnx"));
        long[][] ones = {{1, 1, 1, 1, 1, 1}};
        Batch base = Batch.of(new long[][] {{89, 89, 36, 41, 5, 22}}, ones);
        Batch source = Batch.of(new long[][] {{89, 89, 36, 77, 5, 22}}, ones);
        long token = 7;
        var probability = ActivationPatching.Metric.tokenProbability(m, base, token);
        var loss = ActivationPatching.Metric.tokenLoss(m, base, token);
        INDArray last = m.run(base).get("logits").get(NDArrayIndex.point(0), NDArrayIndex.point(5), NDArrayIndex.all())
                .castTo(DataType.DOUBLE);
        double p = Transforms.softmax(last.reshape(1, last.length()), false).getDouble(0, token);
        assertEquals(p, probability.of(m.run(base)), 1e-6);
        assertEquals(-Math.log(p), loss.of(m.run(base)), 1e-5);

        List<String> hooks = List.of("blocks.0.block_output", "blocks.1.block_output");
        ActivationPatching.Grid act = ActivationPatching.activation(m, base, source, hooks, probability);
        // the last position's logits read the last block's output there alone: patching it moves the whole way
        assertEquals(1.0, act.effect()[1][5], 1e-5);
        assertEquals(0.0, act.effect()[1][0], 1e-5); // and a position before the change moves nothing
        ActivationPatching.Grid byLoss = ActivationPatching.attribution(m, base, source, hooks, loss);
        ActivationPatching.Grid byProbability = ActivationPatching.attribution(m, base, source, hooks, probability);
        // one backward through the cross-entropy; the probability's gradient is −p times the loss's
        double ratio = -probability.of(m.run(base)) * (byLoss.sourceMetric() - byLoss.baseMetric())
                / (byProbability.sourceMetric() - byProbability.baseMetric());
        for (int h = 0; h < 2; h++) {
            for (int t = 0; t < 6; t++) {
                assertEquals(byLoss.effect()[h][t] * ratio, byProbability.effect()[h][t], 1e-6, h + "," + t);
            }
        }
        assertEquals(0.0, byLoss.effect()[1][0], 1e-6);
    }
}
