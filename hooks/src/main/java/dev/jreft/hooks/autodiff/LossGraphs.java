package dev.jreft.hooks.autodiff;

import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.List;

/**
 * Losses appended to a forward graph as ONNX ops, with their data (targets, masks, probes) as graph inputs so a
 * new batch needs no new graph. Each returns the name of its scalar loss tensor.
 */
public final class LossGraphs {
    public static final String PROBE = "loss.probe";
    public static final String MASK = "loss.mask";
    public static final String WEIGHTS = "loss.weights";
    public static final String TARGETS = "loss.targets";
    public static final String LABELS = "loss.labels";

    private LossGraphs() {
    }

    /**
     * {@code sum_b sum_t mask[b,t] * sum_k hidden[b,t,k] * probe[k]}. Inputs: {@code loss.probe} [d] and
     * {@code loss.mask} [b, s] (float).
     */
    public static String maskedProbeSum(OnnxGraph g, String hidden, long width) {
        String[] out = new String[1];
        g.append("loss", b -> {
            String probe = b.input(PROBE, ElemTypes.FLOAT, width);
            String mask = b.input(MASK, ElemTypes.FLOAT, -1, -1);
            String p = b.op("MatMul", List.of(hidden, b.op("Reshape", List.of(probe,
                    b.constantInts(new long[] {width, 1}, 2)))));
            String m = b.op("Reshape", List.of(mask, b.constantInts(new long[] {0, 0, 1}, 3)));
            out[0] = sumAll(b, b.op("Mul", List.of(p, m)));
        });
        return out[0];
    }

    /**
     * Mean token cross-entropy over chosen positions: {@code −Σ w[b,t] log softmax(logits[b,t])[target[b,t]] / Σ w}.
     * Inputs: {@code loss.weights} [b, s] float (1 at the positions that count), {@code loss.targets} [b, s, 1]
     * int64 (the target token at each position; any valid id where the weight is 0).
     */
    public static String tokenCrossEntropy(OnnxGraph g, String logits) {
        String[] out = new String[1];
        g.append("loss", b -> {
            String w = b.input(WEIGHTS, ElemTypes.FLOAT, -1, -1);
            String t = b.input(TARGETS, ElemTypes.INT64, -1, -1, 1);
            String lsm = b.op("LogSoftmax", List.of(logits), Attr.i("axis", 2));
            String picked = b.op("GatherElements", List.of(lsm, t), Attr.i("axis", 2));
            String weighted = b.op("Mul", List.of(picked, b.op("Reshape", List.of(w,
                    b.constantInts(new long[] {0, 0, 1}, 3)))));
            out[0] = b.op("Neg", List.of(b.op("Div", List.of(sumAll(b, weighted),
                    sumAll(b, w)))));
        });
        return out[0];
    }

    /** Mean cross-entropy of class logits [b, C] against {@code loss.labels} [b, 1] int64. */
    public static String classificationCrossEntropy(OnnxGraph g, String logits) {
        String[] out = new String[1];
        g.append("loss", b -> {
            String labels = b.input(LABELS, ElemTypes.INT64, -1, 1);
            String lsm = b.op("LogSoftmax", List.of(logits), Attr.i("axis", 1));
            String picked = b.op("GatherElements", List.of(lsm, labels), Attr.i("axis", 1));
            // ReduceMean without axes reduces everything at every opset
            String mean = b.op("ReduceMean", List.of(picked), Attr.i("keepdims", 0));
            out[0] = b.op("Neg", List.of(mean));
        });
        return out[0];
    }

    /** Sum over all axes to a 0-d scalar (ReduceSum with no axes reduces everything at every opset). */
    private static String sumAll(dev.jreft.hooks.graph.SubgraphBuilder b, String x) {
        return b.op("ReduceSum", List.of(x), Attr.i("keepdims", 0));
    }
}
