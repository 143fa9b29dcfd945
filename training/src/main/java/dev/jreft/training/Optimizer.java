package dev.jreft.training;

import dev.jreft.interventions.params.Constraint;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
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

    /**
     * Each gradient to {@code constrained} when {@code declared} constrains its parameter (DAS rotations on the
     * orthogonal group: {@link OrthogonalAdam}), else to {@code others}; each of the two steps only when it has a
     * gradient this step (Adam's bias correction counts its own steps).
     */
    static Optimizer byConstraint(Map<String, Parameter> declared, Optimizer constrained, Optimizer others) {
        return (params, grads, lr) -> {
            Map<String, INDArray> onManifold = new LinkedHashMap<>();
            Map<String, INDArray> free = new LinkedHashMap<>();
            for (String name : grads.keySet()) {
                Parameter p = declared.get(name);
                boolean isConstrained = p != null && p.constraint() != Constraint.NONE;
                (isConstrained ? onManifold : free).put(name, params.get(name));
            }
            if (!onManifold.isEmpty()) {
                constrained.step(onManifold, grads, lr);
            }
            if (!free.isEmpty()) {
                others.step(free, grads, lr);
            }
        };
    }
}
