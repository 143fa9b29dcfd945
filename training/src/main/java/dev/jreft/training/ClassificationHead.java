package dev.jreft.training;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import dev.jreft.hooks.runtime.Batch;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;

/**
 * A linear classification head on a pooled hidden state: {@code logits = pool(h) W + b}, W [d, C], b [C]. In
 * training it is appended to the graph with the cross-entropy loss (its parameters are graph inputs, so they get
 * gradients with the intervention's); in evaluation it runs on the host from the model's output.
 */
public final class ClassificationHead {
    public static final String W = "head.W";
    public static final String B = "head.b";
    /** Pooling weights [b, s] fed to the training graph: pooled = Σ_t weight[b,t] · h[b,t]. */
    public static final String POOL_WEIGHTS = "head.pool_weights";

    /** How the [b, s, d] hidden states become one vector per example. */
    public enum Pooling {
        /** Mean over real tokens (sentence-transformers' pooling for MiniLM). */
        MEAN,
        /** The first token ([CLS]). */
        FIRST,
        /** The last real token (for causal models, whose last token has seen the whole text). */
        LAST
    }

    private ClassificationHead() {
    }

    /**
     * Appends pooling, the head and the mean cross-entropy to {@code g}; inputs {@code head.pool_weights} [b, s]
     * (see {@link #poolWeights}), {@code head.W}, {@code head.b}, {@code loss.labels} [b, 1] int64. All poolings are
     * one weighted sum, so they share one graph. Returns the loss tensor.
     */
    public static String appendLoss(OnnxGraph g, String hidden, long width, int classes) {
        String[] logits = new String[1];
        g.append("head", b -> {
            String w = b.input(W, ElemTypes.FLOAT, width, classes);
            String bias = b.input(B, ElemTypes.FLOAT, classes);
            String weights = b.input(POOL_WEIGHTS, ElemTypes.FLOAT, -1, -1);
            String w3 = b.op("Reshape", List.of(weights, b.constantInts(new long[] {0, 0, 1}, 3)));
            String pooled = b.reduceSum(b.op("Mul", List.of(hidden, w3)), new long[] {1}, false);
            logits[0] = b.op("Add", List.of(b.op("MatMul", List.of(pooled, w)), bias));
        });
        return LossGraphs.classificationCrossEntropy(g, logits[0]);
    }

    /**
     * Appends the trained head to a graph as constants, with the pooling weights computed in the graph from
     * {@code attention_mask} (right padding, as {@link #poolWeights}): a standalone classifier whose output
     * {@code logits} [b, C] needs no jreft to run. Uses CumSum and float Equal (opset 11).
     */
    public static String appendLogits(OnnxGraph g, String hidden, INDArray w, INDArray bias, Pooling pooling,
                                      String logits) {
        g.append("head", b -> {
            String mask = b.op("Cast", List.of(Batch.ATTENTION_MASK), dev.jreft.hooks.graph.Attr.i("to",
                    ElemTypes.FLOAT));
            String length = b.reduceSum(mask, new long[] {1}, true); // [b, 1] real tokens
            String weights = switch (pooling) {
                case MEAN -> b.op("Div", List.of(mask, length));
                case FIRST, LAST -> {
                    // position of each token: cumsum of ones - 1; the first is 0, the last real one length - 1
                    String ones = b.op("Add", List.of(b.op("Mul", List.of(mask, b.scalar(0, ElemTypes.FLOAT))),
                            b.scalar(1, ElemTypes.FLOAT)));
                    String pos = b.op("Sub", List.of(b.op("CumSum", List.of(ones, b.constantInts(new long[] {1}))),
                            b.scalar(1, ElemTypes.FLOAT)));
                    String at = pooling == Pooling.FIRST ? b.scalar(0, ElemTypes.FLOAT)
                            : b.op("Sub", List.of(length, b.scalar(1, ElemTypes.FLOAT)));
                    yield b.op("Cast", List.of(b.op("Equal", List.of(pos, at))), dev.jreft.hooks.graph.Attr.i("to",
                            ElemTypes.FLOAT));
                }
            };
            String w3 = b.op("Reshape", List.of(weights, b.constantInts(new long[] {0, 0, 1}, 3)));
            String pooled = b.reduceSum(b.op("Mul", List.of(hidden, w3)), new long[] {1}, false);
            String matrix = b.constantFloats(w.castTo(DataType.FLOAT).dup('c').data().asFloat(), w.size(0), w.size(1));
            String vector = b.constantFloats(bias.castTo(DataType.FLOAT).dup('c').data().asFloat(), bias.length());
            b.opTo(logits, "Add", List.of(b.op("MatMul", List.of(pooled, matrix)), vector));
            b.expose(logits);
        });
        return logits;
    }

    /** Per-token pooling weights [b, s]: 1/len on real tokens (mean), or 1 at the first / last real token. */
    public static INDArray poolWeights(Batch batch, Pooling pooling) {
        INDArray w = Nd4j.zeros(DataType.FLOAT, batch.size(), batch.seqLen());
        for (int b = 0; b < batch.size(); b++) {
            int last = batch.lastReal(b);
            switch (pooling) {
                case MEAN -> {
                    for (int t = 0; t <= last; t++) {
                        if (batch.isReal(b, t)) {
                            w.putScalar(b, t, 1.0 / (last + 1));
                        }
                    }
                }
                case FIRST -> w.putScalar(b, 0, 1);
                case LAST -> w.putScalar(b, last, 1);
            }
        }
        return w;
    }

    /** Pooled features [b, d] from hidden states [b, s, d]. */
    public static INDArray pool(INDArray hidden, Batch batch, Pooling pooling) {
        INDArray w = poolWeights(batch, pooling);
        return hidden.mul(w.reshape(w.size(0), w.size(1), 1)).sum(1);
    }

    /** Logits [b, C] on the host. */
    public static INDArray logits(INDArray pooled, INDArray w, INDArray b) {
        return pooled.mmul(w).addiRowVector(b);
    }
}
