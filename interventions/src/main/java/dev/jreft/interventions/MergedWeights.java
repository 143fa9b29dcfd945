package dev.jreft.interventions;

import org.nd4j.linalg.api.ndarray.INDArray;

/** A linear module's weight [out, in] and bias [out] (null when it has none) with a method baked in. */
public record MergedWeights(INDArray weight, INDArray bias) {
}
