package dev.jreft.training;

import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;

import java.util.List;

/**
 * Training settings (pyreft/HF Trainer names where they exist). {@code evalEvery} in steps, 0 = once per epoch;
 * {@code patience}: evaluations without a dev improvement before stopping early (0 = never stop early).
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record TrainingArguments(int epochs, int batchSize, double learningRate, double weightDecay,
                                double warmupRatio, double maxGradNorm, long seed, int evalEvery, int patience,
                                String optimizer, int maxLength) {
    /** Above any learning rate that trains (Adam's steps are about lr; SGD's lr × gradient): a typo such as 1e3. */
    public static final double MAX_LEARNING_RATE = 10;

    /** A learning rate in (0, {@link #MAX_LEARNING_RATE}]; {@code field} names the setting or option. */
    public static double checkLearningRate(String field, double lr) {
        if (!(lr > 0 && lr <= MAX_LEARNING_RATE)) {
            throw new ConfigException(field, lr, "a number in (0, " + (int) MAX_LEARNING_RATE + "]");
        }
        return lr;
    }

    /** The optimisers {@link Optimizer#byName} knows. */
    public static final List<String> OPTIMIZERS = List.of("adamw", "sgd");

    public TrainingArguments {
        Check.between("epochs", epochs, 1, 10_000);
        Check.between("batch_size", batchSize, 1, 1 << 16);
        checkLearningRate("learning_rate", learningRate);
        Check.between("weight_decay", weightDecay, 0, 1, false); // decoupled: each step scales weights by 1 - lr·wd
        Check.between("warmup_ratio", warmupRatio, 0, 1, false);
        Check.nonNegative("max_grad_norm", maxGradNorm); // 0: no clipping
        Check.atLeast("eval_every", evalEvery, 0);
        Check.atLeast("patience", patience, 0);
        Check.oneOf("optimizer", optimizer, OPTIMIZERS);
        Check.atLeast("max_length", maxLength, 2);
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
