package dev.jreft.training;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.HashMap;
import java.util.Map;

/** SGD with momentum and decoupled weight decay. */
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
        for (var e : params.entrySet()) {
            INDArray g = grads.get(e.getKey());
            if (g == null) {
                continue;
            }
            INDArray p = e.getValue();
            INDArray vel = velocity.computeIfAbsent(e.getKey(), k -> p.ulike());
            vel.muli(momentum).addi(g);
            if (weightDecay != 0) {
                p.muli(1 - lr * weightDecay);
            }
            p.subi(vel.mul(lr));
        }
    }
}
