package dev.jreft.interventions.train;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

/**
 * Training settings (pyreft/HF Trainer names where they exist). {@code evalEvery} in steps, 0 = once per epoch;
 * {@code patience}: evaluations without a dev improvement before stopping early (0 = never stop early).
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record TrainingArguments(int epochs, int batchSize, double learningRate, double weightDecay,
                                double warmupRatio, double maxGradNorm, long seed, int evalEvery, int patience,
                                String optimizer, int maxLength) {
    public TrainingArguments {
        if (epochs < 1 || batchSize < 1 || learningRate <= 0 || maxLength < 2) {
            throw new IllegalArgumentException("epochs, batch size and max length must be positive and the learning"
                    + " rate > 0; got epochs=" + epochs + ", batchSize=" + batchSize + ", lr=" + learningRate
                    + ", maxLength=" + maxLength);
        }
    }

    public static TrainingArguments defaults() {
        return new TrainingArguments(3, 16, 4e-3, 0.0, 0.1, 1.0, 42, 0, 2, "adamw", 64);
    }

    public TrainingArguments withEpochs(int e) {
        return new TrainingArguments(e, batchSize, learningRate, weightDecay, warmupRatio, maxGradNorm, seed, evalEvery,
                patience, optimizer, maxLength);
    }

    public TrainingArguments withLearningRate(double lr) {
        return new TrainingArguments(epochs, batchSize, lr, weightDecay, warmupRatio, maxGradNorm, seed, evalEvery,
                patience, optimizer, maxLength);
    }
}
