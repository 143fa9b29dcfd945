package dev.jreft.training;

import java.util.List;

/**
 * What a training run did: steps, wall time, throughput, the loss of every step and the mean loss of every epoch
 * run to its end, and the best dev score.
 */
public record TrainingResult(int steps, double seconds, double examplesPerSecond, List<Double> losses,
                             List<Double> epochLosses, double bestDevAccuracy, int bestStep, boolean stoppedEarly)
        implements java.io.Serializable {
}
