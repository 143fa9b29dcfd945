package dev.jreft.training;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The one training loop: shuffled batches per epoch, the linear warm-up/decay schedule, the optimiser, evaluation
 * on dev (at the end of each epoch or every {@code eval_every} steps), keeping the best dev parameters, early
 * stopping after {@code patience} evaluations without gain, progress, and seeds that make a run repeatable. What is
 * trained and how its loss is computed is the {@link Objective}'s: the NaN stop, clipping and constraints live in
 * its step ({@link TrainableSites#apply}).
 */
public final class Trainer {
    /** What a run trains on examples of type {@code E}. */
    public interface Objective<E> {
        /** One optimisation step on a batch; returns its loss. */
        double step(List<E> batch, Optimizer opt, double lr, double maxGradNorm, int step);

        /** The dev score (higher is better: accuracy, IIA), in evaluation mode. */
        double evaluate(List<E> dev, TrainingArguments args);

        /** The live parameters, for keeping the best dev values. */
        Map<String, INDArray> parameters();

        /** Training mode with dropout drawn from {@code random}; null switches to evaluation. */
        void training(Random random);

        /** The optimiser of a run: {@code args.optimizer()} by default. */
        default Optimizer optimizer(TrainingArguments args) {
            return Optimizer.byName(args.optimizer(), args.weightDecay());
        }

        /** Called once before the first step with the run's length (for what anneals over the run). */
        default void start(int totalSteps) {
        }
    }

    /** One step of an objective: the batch's loss after the optimiser has updated the parameters. */
    @FunctionalInterface
    public interface Step<E> {
        double step(List<E> batch, Optimizer opt, double lr, double maxGradNorm, int step);
    }

    /** An objective over trainable sites and their live parameters, from its step and its dev score. */
    static <E> Objective<E> objective(TrainableSites sites, Map<String, INDArray> params, Step<E> step,
                                      java.util.function.BiFunction<List<E>, TrainingArguments, Double> score) {
        return objective(sites, params, step, score, java.util.function.UnaryOperator.identity());
    }

    /** As above, with the sites' dropout masks drawn from {@code masks} of the run's random (a worker's own). */
    static <E> Objective<E> objective(TrainableSites sites, Map<String, INDArray> params, Step<E> step,
                                      java.util.function.BiFunction<List<E>, TrainingArguments, Double> score,
                                      java.util.function.UnaryOperator<Random> masks) {
        return new Objective<>() {
            @Override
            public double step(List<E> batch, Optimizer opt, double lr, double maxGradNorm, int index) {
                return step.step(batch, opt, lr, maxGradNorm, index);
            }

            @Override
            public double evaluate(List<E> dev, TrainingArguments args) {
                return score.apply(dev, args);
            }

            @Override
            public Map<String, INDArray> parameters() {
                return params;
            }

            @Override
            public void training(Random random) {
                sites.training(random == null ? null : masks.apply(random));
            }
        };
    }

    private Trainer() {
    }

    /**
     * Trains {@code objective} on {@code train} for {@code args.epochs()}; with a non-empty {@code dev} keeps the
     * parameters of the best evaluation. {@code dropLast} drops each epoch's last partial batch (so batch shapes
     * stay few); without it the last batch is smaller. {@code out} gets a progress bar on a terminal, else a line per
     * epoch; null for no output.
     */
    public static <E> TrainingResult train(Objective<E> objective, List<E> train, List<E> dev, TrainingArguments args,
                                           PrintStream out, boolean dropLast) {
        return train(objective, train, dev, args, out, Batches.shuffled(dropLast));
    }

    /** Trains as above with the epochs cut into batches by {@code batches}. */
    public static <E> TrainingResult train(Objective<E> objective, List<E> train, List<E> dev, TrainingArguments args,
                                           PrintStream out, Batches<E> batches) {
        int size = args.batchSize();
        int perEpoch = batches.perEpoch(train, size);
        int total = perEpoch * args.epochs();
        LinearSchedule schedule = LinearSchedule.of(args, total);
        Optimizer opt = objective.optimizer(args);
        Random random = new Random(args.seed());
        boolean evaluating = dev != null && !dev.isEmpty();
        List<Double> losses = new ArrayList<>();
        List<Double> epochLosses = new ArrayList<>();
        Map<String, INDArray> best = evaluating ? snapshot(objective.parameters()) : null;
        double bestScore = -1;
        int bestStep = 0;
        int sinceBest = 0;
        boolean stopped = false;
        int step = 0;
        objective.start(total);
        objective.training(new Random(args.seed() ^ 0x5eedL));
        long t0 = System.nanoTime();
        long examples = 0;
        // an animated bar only on a terminal; a redirected log gets one line per epoch instead of \r-redraws
        boolean interactive = out != null && System.console() != null;
        try (ProgressBar bar = interactive ? new ProgressBarBuilder().setTaskName("train").setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setConsumer(new ConsoleProgressBarConsumer(out, 110))
                .setUpdateIntervalMillis(250).build() : null) {
            outer:
            for (int epoch = 0; epoch < args.epochs(); epoch++) {
                List<List<E>> epochBatches = batches.epoch(train, size, random);
                double epochSum = 0;
                for (int i = 0; i < epochBatches.size(); i++) {
                    List<E> chunk = epochBatches.get(i);
                    double loss = objective.step(chunk, opt, schedule.at(step), args.maxGradNorm(), step);
                    losses.add(loss);
                    epochSum += loss;
                    step++;
                    examples += chunk.size();
                    boolean lastOfEpoch = i == epochBatches.size() - 1;
                    double secs = (System.nanoTime() - t0) / 1e9;
                    if (bar != null) {
                        bar.step();
                        bar.setExtraMessage(String.format(" epoch %d loss %.4f %.1f ex/s", epoch + 1, loss,
                                examples / secs));
                    }
                    if (lastOfEpoch) {
                        epochLosses.add(epochSum / epochBatches.size());
                        if (bar == null && out != null) {
                            out.printf("train %d/%d steps: epoch %d mean loss %.4f %.1f ex/s%n", step, total,
                                    epoch + 1, epochSum / epochBatches.size(), examples / secs);
                        }
                    }
                    boolean evalNow = args.evalEvery() > 0 ? step % args.evalEvery() == 0 : lastOfEpoch;
                    if (evalNow && evaluating) {
                        objective.training(null);
                        double score = objective.evaluate(dev, args);
                        objective.training(new Random(args.seed() ^ step));
                        if (score > bestScore) {
                            bestScore = score;
                            bestStep = step;
                            best = snapshot(objective.parameters());
                            sinceBest = 0;
                        } else if (args.patience() > 0 && ++sinceBest >= args.patience()) {
                            stopped = true;
                            break outer;
                        }
                    }
                }
            }
        }
        objective.training(null);
        if (bestScore >= 0) {
            Map<String, INDArray> live = objective.parameters();
            best.forEach((k, v) -> live.get(k).assign(v));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        return new TrainingResult(step, secs, examples / secs, losses, epochLosses, evaluating ? bestScore : Double.NaN,
                evaluating ? bestStep : step, stopped);
    }

    private static Map<String, INDArray> snapshot(Map<String, INDArray> params) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        params.forEach((k, v) -> m.put(k, v.dup()));
        return m;
    }
}
