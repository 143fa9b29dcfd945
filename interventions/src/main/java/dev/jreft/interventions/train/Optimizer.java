package dev.jreft.interventions.train;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** Updates parameters in place from their gradients. */
public interface Optimizer {
    /** One step with learning rate {@code lr} (the schedule's value for this step). */
    void step(Map<String, INDArray> params, Map<String, INDArray> grads, double lr);

    static Optimizer byName(String name, double weightDecay) {
        return switch (name) {
            case "adamw" -> new AdamW(0.9, 0.999, 1e-8, weightDecay);
            case "sgd" -> new Sgd(0.9, weightDecay);
            default -> throw new IllegalArgumentException("unknown optimizer '" + name + "' (valid: adamw, sgd)");
        };
    }
}
