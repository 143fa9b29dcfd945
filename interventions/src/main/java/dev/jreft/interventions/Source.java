package dev.jreft.interventions;

import dev.jreft.hooks.runtime.Batch;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Where an interchange takes its source values: a cached hook tensor [batch, seq, width] from an earlier run, or a
 * source batch that the same call runs (unintervened) first.
 */
public sealed interface Source {
    record Cached(INDArray values) implements Source {
    }

    record Run(Batch batch) implements Source {
    }

    static Source cached(INDArray hookValues) {
        return new Cached(hookValues);
    }

    static Source run(Batch batch) {
        return new Run(batch);
    }
}
