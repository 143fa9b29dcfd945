package dev.jreft.das.train;

import java.util.Map;

/**
 * One interchange-intervention training or evaluation example: the base input, one source input per intervened
 * variable, and the label the causal model gives for that counterfactual.
 *
 * @param <T> the model's input type (see {@link ModelInputs})
 */
public record InterchangeExample<T>(T base, Map<String, T> sources, int label) {
    public InterchangeExample {
        if (sources.isEmpty()) {
            throw new IllegalArgumentException("an interchange example needs a source for at least one variable");
        }
        sources = Map.copyOf(sources);
    }
}
