package dev.jreft.das.train;

import java.util.Map;

/**
 * One interchange-intervention training or evaluation example in feature space: the base input, one source input
 * per intervened variable, and the label the causal model gives for that counterfactual.
 */
public record InterchangeExample(float[] base, Map<String, float[]> sources, int label) {
}
