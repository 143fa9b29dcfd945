package dev.jreft.spark;

import dev.jreft.analysis.ActivationPatching;
import dev.jreft.analysis.SweepConfig;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.HookedModel;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code jreft sweep}'s config as a Spark job ({@link PatchingSweeps}): {@code sweep.csv} and the heatmaps as the
 * single-machine sweep writes them.
 */
@Command(name = "jreft-spark-sweep", mixinStandardHelpOptions = true, description = "Activation and / or attribution"
        + " patching of a jreft sweep config (examples/sweep-minilm.json) as a Spark job: a task per slot, each over a group of hooks.")
public final class PatchingSweepJob implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "a jreft sweep config (base, source, hooks or"
            + " components and layers, patching, metric, across)")
    Path config;

    @CommandLine.Mixin
    ModelOptions modelOptions;

    @Option(names = "--out", required = true, description = "folder for sweep.csv, the heatmaps and index.json: new,"
            + " empty or an earlier jreft output (replaced as a whole)")
    Path out;

    @CommandLine.Mixin
    SparkOptions sparkOptions;

    @Override
    public Integer call() throws Exception {
        SweepConfig c = ConfigJson.read(config, SweepConfig.class);
        String modelPath = ExecutorModels.forTasks(modelOptions.model);
        String tokenizerPath = ExecutorModels.forTasks(modelOptions.tokenizer);
        try (OutputFolder folder = OutputFolder.prepare(out, "spark-sweep")) { // checked before any run
            HookedModel m = ExecutorModels.get(modelPath, tokenizerPath);
            var tokens = m.tokenizer().orElseThrow(() -> new ConfigException("--tokenizer",
                    "none for " + modelOptions.model, "the model's tokenizer.json (the sweep reads texts)")).tokens(c.base());
            List<String> hooks;
            try {
                hooks = c.hooksOf(m);
            } catch (ConfigException e) {
                throw e.in(config.toString());
            }
            long t0 = System.nanoTime();
            PatchingSweeps.Result r;
            String on;
            double startup;
            try (SparkSession spark = sparkOptions.session("jreft patching sweep")) {
                startup = (System.nanoTime() - t0) / 1e9;
                t0 = System.nanoTime();
                r = PatchingSweeps.run(spark, modelPath, tokenizerPath, c, hooks);
                on = spark.sparkContext().master();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            ActivationPatching.Grid any = r.activation() != null ? r.activation() : r.attribution();
            c.write(folder.staging(), hooks, r.activation(), r.attribution(), tokens);
            folder.commit();
            System.out.printf(Locale.ROOT, "metric %s: base %.5f, source %.5f (cells are shares of that distance)%n",
                    c.metric() == null ? "embedding_direction" : c.metric(), any.baseMetric(), any.sourceMetric());
            if (r.activation() != null && r.attribution() != null) {
                System.out.printf(Locale.ROOT, "correlation of attribution with activation patching: %.4f%n",
                        ActivationPatching.correlation(r.activation(), r.attribution()));
            }
            System.out.printf(Locale.ROOT, "sweep: %d hooks × %d %s in %.1f s on %s (after %.1f s of Spark start-up);"
                    + " wrote %s%n", hooks.size(), any.positions(), c.byHead() ? "heads" : "positions", seconds, on,
                    startup, out.resolve("sweep.csv"));
        }
        return 0;
    }

    public static void main(String[] args) {
        System.exit(ExtractActivations.withErrors(new CommandLine(new PatchingSweepJob())).execute(args));
    }
}
