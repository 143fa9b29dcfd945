package dev.jreft.training;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.FloatBuffer;
import java.util.HashMap;
import java.util.Map;

/**
 * SGD with momentum and decoupled weight decay: {@code u = μ·u + g}, {@code p = p·(1 − lr·λ) − lr·u}. One loop per
 * parameter (see {@link HostFloats}).
 */
public final class Sgd implements Optimizer {
    private final double momentum;
    private final double weightDecay;
    private final Map<String, INDArray> velocity = new HashMap<>();

    public Sgd(double momentum, double weightDecay) {
        this.momentum = momentum;
        this.weightDecay = weightDecay;
    }

    @Override
    public void step(Map<String, INDArray> params, Map<String, INDArray> grads, double lr) {
        double decay = 1 - lr * weightDecay;
        for (var e : params.entrySet()) {
            INDArray g = grads.get(e.getKey());
            if (g == null) {
                continue;
            }
            INDArray target = e.getValue();
            INDArray p = HostFloats.own(target);
            FloatBuffer pb = HostFloats.buffer(p);
            FloatBuffer gb = HostFloats.buffer(HostFloats.own(g));
            FloatBuffer ub = HostFloats.buffer(velocity.computeIfAbsent(e.getKey(), k -> Nd4j.zeros(DataType.FLOAT,
                    target.shape())));
            HostFloats.each(pb.limit(), (from, to) -> {
                for (int i = from; i < to; i++) {
                    float u = (float) (momentum * ub.get(i) + gb.get(i));
                    ub.put(i, u);
                    pb.put(i, (float) (pb.get(i) * decay - lr * u));
                }
            });
            HostFloats.writeBack(p, target);
        }
    }
}
