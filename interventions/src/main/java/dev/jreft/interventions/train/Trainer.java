package dev.jreft.interventions.train;

import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
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
    }

    /** One step of an objective: the batch's loss after the optimiser has updated the parameters. */
    @FunctionalInterface
    public interface Step<E> {
        double step(List<E> batch, Optimizer opt, double lr, double maxGradNorm, int step);
    }

    /** An objective over trainable sites and their live parameters, from its step and its dev score. */
    static <E> Objective<E> objective(TrainableSites sites, Map<String, INDArray> params, Step<E> step,
                                      java.util.function.BiFunction<List<E>, TrainingArguments, Double> score) {
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
                sites.training(random);
            }
        };
    }

    private Trainer() {
    }

    /**
     * Trains {@code objective} on {@code train} for {@code args.epochs()}; with a non-empty {@code dev} keeps the
     * parameters of the best evaluation. {@code dropLast} drops each epoch's last partial batch (so batch shapes
     * stay few); without it the last batch is smaller.
     */
    public static <E> TrainingResult train(Objective<E> objective, List<E> train, List<E> dev, TrainingArguments args,
                                           PrintStream out, boolean dropLast) {
        int size = args.batchSize();
        if (dropLast && train.size() < size) {
            throw new IllegalArgumentException("the training set (" + train.size() + " examples) is smaller than one"
                    + " batch (" + size + ")");
        }
        int perEpoch = dropLast ? train.size() / size : (train.size() + size - 1) / size;
        int total = perEpoch * args.epochs();
        LinearSchedule schedule = LinearSchedule.of(args, total);
        Optimizer opt = Optimizer.byName(args.optimizer(), args.weightDecay());
        Random random = new Random(args.seed());
        boolean evaluating = dev != null && !dev.isEmpty();
        List<Double> losses = new ArrayList<>();
        Map<String, INDArray> best = evaluating ? snapshot(objective.parameters()) : null;
        double bestScore = -1;
        int bestStep = 0;
        int sinceBest = 0;
        boolean stopped = false;
        int step = 0;
        objective.training(new Random(args.seed() ^ 0x5eedL));
        long t0 = System.nanoTime();
        long examples = 0;
        // an animated bar only on a terminal; a redirected log gets one line per epoch instead of \r-redraws
        boolean interactive = System.console() != null;
        try (ProgressBar bar = interactive ? new ProgressBarBuilder().setTaskName("train").setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setConsumer(new ConsoleProgressBarConsumer(out, 110))
                .setUpdateIntervalMillis(250).build() : null) {
            outer:
            for (int epoch = 0; epoch < args.epochs(); epoch++) {
                List<E> order = new ArrayList<>(train);
                Collections.shuffle(order, random);
                for (int i = 0; dropLast ? i + size <= order.size() : i < order.size(); i += size) {
                    List<E> chunk = order.subList(i, Math.min(order.size(), i + size));
                    double loss = objective.step(chunk, opt, schedule.at(step), args.maxGradNorm(), step);
                    losses.add(loss);
                    step++;
                    examples += chunk.size();
                    boolean lastOfEpoch = dropLast ? i + 2L * size > order.size() : i + size >= order.size();
                    double secs = (System.nanoTime() - t0) / 1e9;
                    String status = String.format("epoch %d loss %.4f %.1f ex/s", epoch + 1, loss, examples / secs);
                    if (bar != null) {
                        bar.step();
                        bar.setExtraMessage(" " + status);
                    } else if (lastOfEpoch) {
                        out.printf("train %d/%d steps: %s%n", step, total, status);
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
        return new TrainingResult(step, secs, examples / secs, losses, evaluating ? bestScore : Double.NaN,
                evaluating ? bestStep : step, stopped);
    }

    private static Map<String, INDArray> snapshot(Map<String, INDArray> params) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        params.forEach((k, v) -> m.put(k, v.dup()));
        return m;
    }
}
