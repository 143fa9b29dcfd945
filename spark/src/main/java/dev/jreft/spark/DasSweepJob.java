package dev.jreft.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.das.DasSweep;
import dev.jreft.das.HierarchicalEqualityExperiment;
import dev.jreft.das.HierarchicalEqualityExperiment.Settings;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.OutputFolder;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code jreft das}'s hierarchical-equality config with its sweep as a Spark job: the MLP trained on the driver,
 * one task per sweep cell; {@code sweep.csv} as the single-machine run writes it (only the seconds differ).
 */
@Command(name = "jreft-spark-das", mixinStandardHelpOptions = true, description = "The DAS sweep of a"
        + " hierarchical-equality config (examples/das-hierarchical-equality.json) as a Spark job: one task per cell.")
public final class DasSweepJob implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "a jreft das config with \"experiment\":"
            + " \"hierarchical-equality\" and a \"sweep\"")
    Path config;

    @CommandLine.Mixin
    SparkOptions sparkOptions;

    @Option(names = "--out", required = true, description = "folder for the MLP, sweep.csv and index.json: new,"
            + " empty or an earlier jreft output (replaced as a whole)")
    Path out;

    @Override
    public Integer call() throws Exception {
        JsonNode c = ConfigJson.tree(ConfigJson.text(config), config.toString());
        if (!"hierarchical-equality".equals(c.path("experiment").asText())) {
            throw new ConfigException("experiment", c.path("experiment").asText(), "hierarchical-equality (the sweep"
                    + " this job distributes)").in(config.toString());
        }
        Settings s = ConfigJson.overDefaults(Settings.defaults(), c.get("settings"), Settings.class,
                config.toString(), "settings");
        JsonNode sweep = c.get("sweep");
        if (sweep == null || !sweep.isObject()) {
            throw ConfigException.of("sweep", "found none; valid: {\"hooks\": [...], \"sizes\": [...], \"method\":"
                    + " ...}").in(config.toString());
        }
        List<String> hooks = strings(sweep.get("hooks"));
        List<Integer> sizes = new ArrayList<>();
        sweep.path("sizes").forEach(n -> sizes.add(n.asInt()));
        List<DasTrainer.Method> methods = strings(sweep.get("method")).stream()
                .map(m -> Check.choice("sweep.method", m, DasTrainer.Method.class)).toList();
        try {
            dev.jreft.das.HierarchicalEqualitySweep.check(s, hooks, sizes, methods.isEmpty()
                    ? List.of(DasTrainer.Method.ROTATED) : methods);
        } catch (IllegalArgumentException e) {
            throw ConfigException.within("sweep", e);
        }
        try (OutputFolder folder = OutputFolder.prepare(out, "spark-das")) {
            PrintStream progress = System.out;
            HierarchicalEqualityExperiment.Report report = HierarchicalEqualityExperiment.run(s, folder.staging(),
                    progress);
            DasSweep.Table table;
            long t0 = System.nanoTime();
            String on;
            try (SparkSession spark = sparkOptions.session("jreft das sweep")) {
                table = DasSweeps.hierarchicalEquality(spark, s, report.model(), hooks, sizes, methods.isEmpty()
                        ? List.of(DasTrainer.Method.ROTATED) : methods);
                on = spark.sparkContext().master();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            Files.writeString(folder.staging().resolve("sweep.csv"), table.csv(), StandardCharsets.UTF_8);
            folder.commit();
            System.out.print(table.aligned());
            System.out.printf(Locale.ROOT, "sweep: %d cells in %.1f s on %s; wrote %s%n", table.rows().size(),
                    seconds, on, out.resolve("sweep.csv"));
        }
        return 0;
    }

    private static List<String> strings(JsonNode n) {
        List<String> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            return out;
        }
        if (n.isTextual()) {
            return List.of(n.asText());
        }
        n.forEach(x -> out.add(x.asText()));
        return out;
    }

    public static void main(String[] args) {
        System.exit(ExtractActivations.withErrors(new CommandLine(new DasSweepJob())).execute(args));
    }
}
