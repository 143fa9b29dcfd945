package dev.jreft.spark;

import dev.jreft.hooks.io.ConfigException;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** The activation-dataset job: a text file in, Parquet out; embedded {@code local[*]} unless spark-submit says. */
@Command(name = "jreft-spark-activations", mixinStandardHelpOptions = true, description = "Hook activations of every"
        + " line of a text file at chosen positions, written as Parquet in resumable chunks (one row per text and"
        + " position; id = the line's number from 0).")
public final class ExtractActivations implements Callable<Integer> {
    @CommandLine.Mixin
    ModelOptions modelOptions;

    @Option(names = "--texts", required = true, description = "a UTF-8 text file, one text per line")
    Path texts;

    @Option(names = "--hooks", required = true, split = ",", description = "hook names, comma separated")
    List<String> hooks;

    @Option(names = "--positions", defaultValue = "all", description = "all real tokens, or a pyreft spec such as"
            + " f1+l1; default ${DEFAULT-VALUE}")
    String positions;

    @Option(names = "--batch-size", defaultValue = "32", description = "texts per ORT run; default ${DEFAULT-VALUE}")
    int batchSize;

    @Option(names = "--chunk-size", defaultValue = "10000", description = "texts per Parquet chunk (the unit a rerun"
            + " resumes from); default ${DEFAULT-VALUE}")
    int chunkSize;

    @Option(names = "--partitions", defaultValue = "0", description = "Spark partitions of the texts (0: Spark's"
            + " default parallelism)")
    int partitions;

    @CommandLine.Mixin
    SparkOptions sparkOptions;

    @Option(names = "--out", required = true, description = "the output folder (new, empty, or an earlier run to"
            + " resume)")
    Path out;

    @Override
    public Integer call() throws Exception {
        try {
            return run();
        } catch (ConfigException e) { // the fields as this command's options name them
            throw e.renamed("positions", "--positions").renamed("hooks", "--hooks").renamed("batch_size",
                    "--batch-size").renamed("chunk_size", "--chunk-size").renamed("model", "--model")
                    .renamed("tokenizer", "--tokenizer");
        }
    }

    private Integer run() throws Exception {
        if (!Files.isRegularFile(texts)) {
            throw new ConfigException("--texts", texts.toString(), "an existing text file, one text per line");
        }
        if (partitions < 0) {
            throw new ConfigException("--partitions", partitions, "an integer >= 0 (0: Spark's default parallelism)");
        }
        ActivationDatasets.Spec spec = new ActivationDatasets.Spec(modelOptions.model, modelOptions.tokenizer, hooks,
                positions, batchSize);
        List<String> lines = Files.readAllLines(texts, StandardCharsets.UTF_8);
        try (SparkSession spark = sparkOptions.session("jreft activations")) {
            int n = partitions > 0 ? partitions : spark.sparkContext().defaultParallelism();
            Dataset<Row> data = ActivationDatasets.texts(spark, lines).repartition(n);
            long t0 = System.nanoTime();
            ActivationDatasets.Summary s = ActivationDatasets.write(spark, data, spec, out, chunkSize);
            System.out.printf(Locale.ROOT, "wrote %s: %d texts, %d rows (text x position), %d chunks written, %d kept"
                    + " from an earlier run, in %.1f s on %s%n", out, s.examples(), s.rows(), s.written(), s.kept(),
                    (System.nanoTime() - t0) / 1e9, spark.sparkContext().master());
        }
        return 0;
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the job; returns its exit code (0, or 2 for bad input, after one line on standard error). */
    static int execute(String... args) {
        return withErrors(new CommandLine(new ExtractActivations())).execute(args);
    }

    /** Bad input as the jreft CLI reports it: one line on standard error, exit code 2. */
    static CommandLine withErrors(CommandLine cl) {
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof ConfigException) {
                System.err.println("jreft-spark: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        cl.setParameterExceptionHandler((e, a) -> {
            System.err.println("jreft-spark: " + e.getMessage().replaceAll("\\R", " "));
            return 2;
        });
        return cl;
    }
}
