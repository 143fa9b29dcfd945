package dev.jreft.training;

/** Linear warm-up from 0 to the peak over {@code warmup} steps, then linear decay to 0 at {@code total} steps. */
public record LinearSchedule(double peak, int warmup, int total) {
    /** The schedule of a run of {@code total} steps: peak {@code args.learningRate()}, warm-up by the ratio. */
    public static LinearSchedule of(TrainingArguments args, int total) {
        return new LinearSchedule(args.learningRate(), (int) Math.round(total * args.warmupRatio()), total);
    }

    public double at(int step) {
        if (warmup > 0 && step < warmup) {
            return peak * (step + 1) / warmup;
        }
        return peak * Math.max(0.0, (double) (total - step) / Math.max(1, total - warmup));
    }
}
