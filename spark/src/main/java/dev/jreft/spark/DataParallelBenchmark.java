package dev.jreft.spark;

import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.ReftClassifier;
import dev.jreft.training.TrainConfig;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.data.LabelledText;
import dev.jreft.training.data.SentimentData;
import org.apache.spark.sql.SparkSession;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Data-parallel training throughput in one process: the demo's LoReFT (rank 4 at three layers' first and last
 * tokens, head, AdamW, batch 16 × 32 tokens) trained for one epoch on the first sentiment sentences, in this process
 * against {@link DataParallelTraining} with one and two barrier workers in {@code local[2]}; rounds interleaved after
 * a warm-up, medians and their ratios to the single process. Spark's start-up is not counted; each worker's model
 * load is (it is part of a job).
 *
 * <p>Run: {@code java -cp spark/target/jreft-spark.jar dev.jreft.spark.DataParallelBenchmark [examples] [rounds]}
 */
public final class DataParallelBenchmark {
    private static final String CONFIG = """
            {"model": "minilm", "data": {"sentiment": "data/sentiment"},
             "reft": {"intervention": "loreft", "hooks": ["blocks.1.block_output", "blocks.3.block_output",
                      "blocks.5.block_output"], "rank": 4, "positions": "f1+l1", "dropout": 0},
             "training": {"epochs": 1, "batch_size": 16, "learning_rate": 0.004, "weight_decay": 0, "warmup_ratio": 0,
                          "max_grad_norm": 1, "seed": 1, "eval_every": 0, "patience": 0, "optimizer": "adamw",
                          "max_length": 32},
             "output": "runs/never-written"}
            """;

    private DataParallelBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 512;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        List<LabelledText> train = SentimentData.load(SentimentData.ensure(Path.of("data/sentiment"))).subList(0, n);
        TrainConfig.Split split = new TrainConfig.Split(train, List.of(), List.of());
        TrainConfig c = TrainConfig.parse(CONFIG, "benchmark");
        HookedModel m = ExecutorModels.get(ActivationDatasets.EMBEDDED, null);
        TrainingArguments args1 = c.arguments();
        alone(c, m, split, args1); // warm-up: the session, the shape variants
        double[][] times = new double[3][rounds];
        double[] finalLoss = new double[3];
        try (SparkSession spark = SparkSession.builder().master("local[2]").appName("jreft benchmark")
                .config("spark.ui.enabled", "false").getOrCreate()) {
            parallel(spark, c, m, split, args1, 2); // warm-up of the barrier stage
            for (int r = 0; r < rounds; r++) {
                long t0 = System.nanoTime();
                finalLoss[0] = alone(c, m, split, args1);
                times[0][r] = (System.nanoTime() - t0) / 1e9;
                for (int workers = 1; workers <= 2; workers++) {
                    t0 = System.nanoTime();
                    finalLoss[workers] = parallel(spark, c, m, split, args1, workers);
                    times[workers][r] = (System.nanoTime() - t0) / 1e9;
                }
            }
        }
        System.out.printf(Locale.ROOT, "%d sentences, %d steps of batch %d, LoReFT rank 4 x 3 layers f1+l1, %d rounds"
                + " (median), %d cores%n", n, n / args1.batchSize(), args1.batchSize(), rounds,
                Runtime.getRuntime().availableProcessors());
        String[] names = {"one process", "Spark local[2], 1 worker", "Spark local[2], 2 workers"};
        double base = median(times[0]);
        for (int i = 0; i < 3; i++) {
            double t = median(times[i]);
            System.out.printf(Locale.ROOT, "%-27s %7.2f s  %6.1f examples/s  %5.2f x one process's time  final loss"
                    + " %.6f%n", names[i], t, n / t, t / base, finalLoss[i]);
        }
    }

    private static double alone(TrainConfig c, HookedModel m, TrainConfig.Split split, TrainingArguments args) {
        ReftClassifier classifier = ReftClassifier.create(m, c.classifierConfig(m), args.seed());
        List<Double> losses = classifier.train(split.train(), split.dev(), args, null).losses();
        return losses.get(losses.size() - 1);
    }

    private static double parallel(SparkSession spark, TrainConfig c, HookedModel m, TrainConfig.Split split,
                                   TrainingArguments args, int workers) {
        ReftClassifier classifier = ReftClassifier.create(m, c.classifierConfig(m), args.seed());
        List<Double> losses = DataParallelTraining.train(spark, CONFIG, "benchmark", ActivationDatasets.EMBEDDED, null,
                classifier, split, args, workers, null).losses();
        return losses.get(losses.size() - 1);
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
