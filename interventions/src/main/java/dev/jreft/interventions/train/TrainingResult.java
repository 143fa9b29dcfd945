package dev.jreft.interventions.train;

import java.util.List;

/** What a training run did: steps, wall time, throughput, the loss curve and the best dev accuracy. */
public record TrainingResult(int steps, double seconds, double examplesPerSecond, List<Double> losses,
                             double bestDevAccuracy, int bestStep, boolean stoppedEarly) {
}
