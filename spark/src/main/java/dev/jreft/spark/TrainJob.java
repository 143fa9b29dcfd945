package dev.jreft.spark;

import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.interventions.config.InterventionConfig;
import dev.jreft.training.TrainConfig;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code jreft train --config} as a data-parallel Spark job: the same config, checks, checkpoint and metrics; the
 * steps run on {@code --workers} barrier tasks that each take a share of every batch ({@link DataParallelTraining}).
 */
@Command(name = "jreft-spark-train", mixinStandardHelpOptions = true, description = "Train from a jreft train config"
        + " data-parallel on Spark: every step's batch is shared by the workers and their gradients averaged; writes"
        + " the checkpoint (config \"output\") and metrics JSON as jreft train does.")
public final class TrainJob implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "a jreft train config (JSON; see README)")
    Path config;

    @Option(names = "--workers", defaultValue = "2", description = "barrier tasks sharing each batch; at most the"
            + " task slots (local[N]: N); default ${DEFAULT-VALUE}")
    int workers;

    @Option(names = "--metrics", description = "metrics JSON to write (default: metrics.json in the checkpoint"
            + " folder)")
    Path metrics;

    @CommandLine.Mixin
    SparkOptions sparkOptions;

    @Override
    public Integer call() throws Exception {
        if (config.toString().isEmpty() || !Files.isRegularFile(config)) {
            throw new ConfigException("--config", config.toString(), "the path of a JSON config file"
                    + (Files.isDirectory(config) ? " (this is a folder)" : ""));
        }
        String json = ConfigJson.text(config);
        TrainConfig c = TrainConfig.parse(json, config.toString());
        Path out = metrics != null ? metrics : Path.of(c.output()).resolve("metrics.json");
        AtomicFiles.checkNotAnInput(out, "--metrics", List.of(config));
        // the tasks load the model from where the driver found it, else from spark-submit --files
        String model = ExecutorModels.forTasks(c.model() == null ? InterventionConfig.DEFAULT_MODEL : c.model());
        String tokenizer = ExecutorModels.forTasks(c.tokenizer());
        Map<String, Object> m;
        try (SparkSession spark = sparkOptions.session("jreft train")) {
            DataParallelTraining.checkWorkers(spark, workers); // before the model loads
            m = c.run(Path.of(""), out, System.out, (classifier, split, args, progress) -> DataParallelTraining.train(
                    spark, json, config.toString(), model, tokenizer, classifier, split, args, workers, progress));
        } catch (ConfigException e) {
            throw e.field().startsWith("--") ? e : e.in(config.toString());
        }
        System.out.println(TrainConfig.toJson(m));
        System.out.println("checkpoint: " + c.output() + ", metrics: " + out + " (" + workers + " workers)");
        return 0;
    }

    public static void main(String[] args) {
        System.exit(ExtractActivations.withErrors(new CommandLine(new TrainJob())).execute(args));
    }
}
