package dev.jreft.training;

/**
 * The annealed temperature of boundless DAS and sigmoid masks (pyvene anneals linearly, e.g. from 50 to 0.1 over
 * training): {@code start + (end − start)·step/(total − 1)}, held at {@code end} afterwards. Fed each step as the
 * intervention's non-trained {@code temperature} input, so annealing never rebuilds a session.
 */
public record TemperatureSchedule(double start, double end, int total) {
    public TemperatureSchedule {
        if (start <= 0 || end <= 0 || total < 1) {
            throw new IllegalArgumentException("temperatures must be > 0 and total steps >= 1; got start=" + start
                    + ", end=" + end + ", total=" + total);
        }
    }

    public double at(int step) {
        if (total == 1 || step >= total - 1) {
            return end;
        }
        return start + (end - start) * Math.max(0, step) / (total - 1);
    }

    /** The value as the [1] float tensor the interventions take. */
    public org.nd4j.linalg.api.ndarray.INDArray tensorAt(int step) {
        return org.nd4j.linalg.factory.Nd4j.createFromArray((float) at(step));
    }
}
