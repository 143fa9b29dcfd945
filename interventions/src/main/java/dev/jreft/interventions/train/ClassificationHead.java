package dev.jreft.interventions.train;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;

/**
 * A linear classification head on a pooled hidden state: {@code logits = pool(h) W + b}, W [d, C], b [C]. In
 * training it is appended to the graph with the cross-entropy loss (its parameters are graph inputs, so they get
 * gradients with the intervention's); in evaluation it runs on the host from the model's output.
 */
public final class ClassificationHead {
    public static final String W = "head.W";
    public static final String B = "head.b";

    /** How the [b, s, d] hidden states become one vector per example. */
    public enum Pooling {
        /** Mean over real tokens (sentence-transformers' pooling for MiniLM). */
        MEAN,
        /** The first token ([CLS]). */
        FIRST
    }

    private ClassificationHead() {
    }

    /**
     * Appends pooling, the head and the mean cross-entropy to {@code g}; inputs {@code loss.mask} [b, s] float,
     * {@code head.W}, {@code head.b}, {@code loss.labels} [b, 1] int64. Returns the loss tensor.
     */
    public static String appendLoss(OnnxGraph g, String hidden, long width, int classes, Pooling pooling) {
        String[] logits = new String[1];
        g.append("head", b -> {
            String w = b.input(W, ElemTypes.FLOAT, width, classes);
            String bias = b.input(B, ElemTypes.FLOAT, classes);
            String pooled;
            if (pooling == Pooling.MEAN) {
                String mask = b.input(LossGraphs.MASK, ElemTypes.FLOAT, -1, -1);
                String m3 = b.op("Reshape", List.of(mask, b.constantInts(new long[] {0, 0, 1}, 3)));
                String sum = b.reduceSum(b.op("Mul", List.of(hidden, m3)), new long[] {1}, false);
                pooled = b.op("Div", List.of(sum, b.reduceSum(mask, new long[] {1}, true)));
            } else {
                String first = b.op("Slice", List.of(hidden, b.constantInts(new long[] {0}, 1),
                        b.constantInts(new long[] {1}, 1), b.constantInts(new long[] {1}, 1)));
                pooled = b.op("Reshape", List.of(first, b.constantInts(new long[] {0, -1}, 2)));
            }
            logits[0] = b.op("Add", List.of(b.op("MatMul", List.of(pooled, w)), bias));
        });
        return LossGraphs.classificationCrossEntropy(g, logits[0]);
    }

    /** Pooled features [b, d] from hidden states [b, s, d] and the attention mask [b, s]. */
    public static INDArray pool(INDArray hidden, INDArray mask, Pooling pooling) {
        if (pooling == Pooling.FIRST) {
            return hidden.get(NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()).dup();
        }
        INDArray m = mask.castTo(DataType.FLOAT);
        INDArray sum = hidden.mul(m.reshape(m.size(0), m.size(1), 1)).sum(1);
        return sum.diviColumnVector(m.sum(1).reshape(m.size(0), 1));
    }

    /** Logits [b, C] on the host. */
    public static INDArray logits(INDArray pooled, INDArray w, INDArray b) {
        return pooled.mmul(w).addiRowVector(b);
    }
}
