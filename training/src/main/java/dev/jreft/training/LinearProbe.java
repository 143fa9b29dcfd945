package dev.jreft.training;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.data.LabelledText;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The baseline beside an intervention: a linear head alone on the frozen model's pooled features (softmax
 * regression, full-batch AdamW, best dev step kept). Features are computed once, so this costs one forward pass
 * over the data.
 */
public final class LinearProbe {
    private final INDArray w;
    private final INDArray b;
    private final ClassificationHead.Pooling pooling;

    private LinearProbe(INDArray w, INDArray b, ClassificationHead.Pooling pooling) {
        this.w = w;
        this.b = b;
        this.pooling = pooling;
    }

    /** Pooled last-layer features [n, d] of {@code data}. */
    public static INDArray features(HookedModel model, List<LabelledText> data, ClassificationHead.Pooling pooling,
                                    int batchSize, int maxLength) {
        String out = model.graph().outputNames().get(0);
        List<INDArray> rows = new ArrayList<>();
        for (int i = 0; i < data.size(); i += batchSize) {
            List<String> texts = data.subList(i, Math.min(data.size(), i + batchSize)).stream()
                    .map(LabelledText::text).toList();
            Batch batch = model.complete(model.tokenizer().orElseThrow().encode(texts, maxLength, 16));
            rows.add(ClassificationHead.pool(model.run(batch).get(out), batch, pooling));
        }
        return Nd4j.concat(0, rows.toArray(new INDArray[0]));
    }

    /** Trains on train features, keeping the step with the best dev accuracy. */
    public static LinearProbe train(INDArray xTrain, int[] yTrain, INDArray xDev, int[] yDev, int classes, int steps,
                                    double lr, ClassificationHead.Pooling pooling) {
        long d = xTrain.size(1);
        INDArray w = Nd4j.zeros(DataType.FLOAT, d, classes);
        INDArray bias = Nd4j.zeros(DataType.FLOAT, classes);
        INDArray onehot = oneHot(yTrain, classes);
        Map<String, INDArray> params = new LinkedHashMap<>();
        params.put("W", w);
        params.put("b", bias);
        AdamW opt = new AdamW(0.9, 0.999, 1e-8, 0.0);
        double best = -1;
        INDArray bestW = w.dup();
        INDArray bestB = bias.dup();
        for (int s = 0; s < steps; s++) {
            INDArray p = softmax(xTrain.mmul(w).addiRowVector(bias));
            INDArray diff = p.subi(onehot).divi(xTrain.size(0));
            opt.step(params, Map.of("W", xTrain.transpose().mmul(diff), "b", diff.sum(0)), lr);
            double acc = logitAccuracy(xDev.mmul(w).addiRowVector(bias), yDev);
            if (acc > best) {
                best = acc;
                bestW.assign(w);
                bestB.assign(bias);
            }
        }
        return new LinearProbe(bestW, bestB, pooling);
    }

    public double accuracy(INDArray features, int[] labels) {
        return logitAccuracy(features.mmul(w).addiRowVector(b), labels);
    }

    /** The head's weight W [d, C] (logits = pooled · W + b). */
    public INDArray weights() {
        return w;
    }

    /** The head's bias b [C]. */
    public INDArray bias() {
        return b;
    }

    public long parameters() {
        return w.length() + b.length();
    }

    public ClassificationHead.Pooling pooling() {
        return pooling;
    }

    static double logitAccuracy(INDArray logits, int[] labels) {
        INDArray pred = logits.argMax(1);
        int correct = 0;
        for (int i = 0; i < labels.length; i++) {
            if (pred.getInt(i) == labels[i]) {
                correct++;
            }
        }
        return (double) correct / labels.length;
    }

    private static INDArray softmax(INDArray logits) {
        INDArray shifted = logits.subColumnVector(logits.max(1).reshape(logits.size(0), 1));
        INDArray e = Transforms.exp(shifted, false);
        return e.diviColumnVector(e.sum(1).reshape(e.size(0), 1));
    }

    private static INDArray oneHot(int[] y, int classes) {
        INDArray o = Nd4j.zeros(DataType.FLOAT, y.length, classes);
        for (int i = 0; i < y.length; i++) {
            o.putScalar(i, y[i], 1);
        }
        return o;
    }
}
