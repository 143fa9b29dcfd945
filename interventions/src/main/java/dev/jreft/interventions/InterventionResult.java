package dev.jreft.interventions;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * Outputs of an intervened run, the requested hook values after the interventions, and for each site the
 * values it collected ([n, selected features], rows in the order of the base positions; null unless collect).
 */
public record InterventionResult(Map<String, INDArray> outputs, Map<String, INDArray> hooks,
                                 List<INDArray> collected) {
    public INDArray output(String name) {
        INDArray a = outputs.get(name);
        if (a == null) {
            throw new IllegalArgumentException("no output '" + name + "'; outputs: " + outputs.keySet());
        }
        return a;
    }

    public INDArray hook(String name) {
        INDArray a = hooks.get(name);
        if (a == null) {
            throw new IllegalArgumentException("hook '" + name + "' was not requested; requested: " + hooks.keySet());
        }
        return a;
    }
}
