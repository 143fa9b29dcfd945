package dev.jreft.spark;

import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.apache.spark.api.java.function.ForeachFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Extraction throughput in one process: the plain single-process API against the same extraction as a Spark job in
 * {@code local[1]} and {@code local[2]} (every row built, nothing written), on the embedded MiniLM, rounds
 * interleaved after a warm-up; prints medians and their ratios to the plain API.
 *
 * <p>Run: {@code java -cp spark/target/jreft-spark.jar dev.jreft.spark.ExtractionBenchmark [sentiment | TEXTS.txt]
 * [texts] [rounds]}
 */
public final class ExtractionBenchmark {
    private static final List<String> HOOKS = List.of("blocks.3.block_output", "blocks.5.block_output");
    private static final int BATCH = 32;

    private ExtractionBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        // "sentiment": the demo's sentences (fetched into data/sentiment on first use), else a file of one text a line
        String source = args.length > 0 ? args[0] : "sentiment";
        List<String> texts = source.equals("sentiment") ? dev.jreft.training.data.SentimentData.load(
                dev.jreft.training.data.SentimentData.ensure(Path.of("data/sentiment"))).stream()
                .map(t -> t.text()).toList() : Files.readAllLines(Path.of(source));
        int n = args.length > 1 ? Integer.parseInt(args[1]) : Math.min(1000, texts.size());
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        texts = texts.subList(0, n);
        ActivationDatasets.Spec spec = new ActivationDatasets.Spec(ActivationDatasets.EMBEDDED, null, HOOKS, "all",
                BATCH);
        HookedModel model = ExecutorModels.get(spec);
        plain(model, texts); // warm-up: the session, the shape variants
        double[][] times = new double[3][rounds];
        long rows = 0;
        for (int r = 0; r < rounds; r++) {
            long t0 = System.nanoTime();
            rows = plain(model, texts);
            times[0][r] = (System.nanoTime() - t0) / 1e9;
            for (int cores = 1; cores <= 2; cores++) {
                times[cores][r] = spark(texts, spec, cores, rows);
            }
        }
        System.out.printf(Locale.ROOT, "%d texts, %d rows (text x token), hooks %s, batch %d, %d rounds (median)%n",
                n, rows, HOOKS, BATCH, rounds);
        String[] names = {"plain API (one process)", "Spark local[1]", "Spark local[2]"};
        double base = median(times[0]);
        for (int i = 0; i < 3; i++) {
            double t = median(times[i]);
            System.out.printf(Locale.ROOT, "%-26s %7.2f s  %7.0f texts/s  %5.2f x the plain API's time%n", names[i], t,
                    n / t, t / base);
        }
    }

    /** The plain API's extraction: every row's vectors copied out, batch by batch. */
    private static long plain(HookedModel model, List<String> texts) {
        long rows = 0;
        for (int from = 0; from < texts.size(); from += BATCH) {
            List<String> part = texts.subList(from, Math.min(texts.size(), from + BATCH));
            Batch batch = model.tokenize(part);
            ActivationCache cache = model.runWithCache(batch, HOOKS);
            for (int r = 0; r < part.size(); r++) {
                for (int p = batch.firstReal(r); p <= batch.lastReal(r); p++, rows++) {
                    for (String hook : HOOKS) {
                        cache.get(hook).get(NDArrayIndex.point(r), NDArrayIndex.point(p), NDArrayIndex.all())
                                .toFloatVector();
                    }
                }
            }
        }
        return rows;
    }

    /** Seconds for the Spark job to build every row, sessions already started (their start-up is not counted). */
    private static double spark(List<String> texts, ActivationDatasets.Spec spec, int cores, long rows)
            throws java.io.IOException {
        try (SparkSession spark = SparkSession.builder().master("local[" + cores + "]").appName("jreft benchmark")
                .config("spark.ui.enabled", "false").getOrCreate()) {
            Dataset<Row> data = ActivationDatasets.texts(spark, texts).repartition(cores).cache();
            data.count();
            long t0 = System.nanoTime();
            Dataset<Row> out = ActivationDatasets.extract(data, spec);
            out.foreach((ForeachFunction<Row>) r -> r.getList(3)); // every row built and read, nothing written
            double seconds = (System.nanoTime() - t0) / 1e9;
            long got = out.count();
            if (got != rows) {
                throw new IllegalStateException("Spark built " + got + " rows, the plain API " + rows);
            }
            return seconds;
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
