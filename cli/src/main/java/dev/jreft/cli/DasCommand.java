package dev.jreft.cli;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.das.DasSweep;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.OutputFolder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "das", description = "Run a distributed alignment search experiment from a JSON config (experiment,"
        + " optional settings, optional sweep over hooks and subspace sizes); prints the report and the sweep table"
        + " and writes report.json and sweep.csv into --out.")
final class DasCommand implements Callable<Integer> {
    /** The experiments a config can name; each resolves its settings and checks its sweep before any training. */
    static final Map<String, DasExperiment> EXPERIMENTS = new TreeMap<>(Map.of(
            HierarchicalEqualityRun.NAME, new HierarchicalEqualityRun(),
            NegationProbeRun.NAME, new NegationProbeRun()));

    /** Settings and reports in their JSON form (snake_case, as every jreft config). */
    static final ObjectMapper SNAKE = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT);

    @Option(names = "--config", required = true, description = "experiment config (JSON), e.g."
            + " examples/das-hierarchical-equality.json")
    Path config;

    @Option(names = "--out", defaultValue = "runs/das", description = "folder for report.json, sweep.csv and the"
            + " experiment's files: new, empty or an earlier jreft output (replaced as a whole; default:"
            + " ${DEFAULT-VALUE})")
    Path out;

    /** A config file: which experiment, its settings over the defaults, and an optional sweep. */
    record DasConfig(String experiment, JsonNode settings, SweepSpec sweep) {
    }

    /** The sweep grid; {@code method} is one name or a list of names. Checked when read. */
    record SweepSpec(List<String> hooks, List<Integer> sizes,
                     @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> method) {
        /** The DAS methods a sweep compares. */
        static final List<String> METHODS = List.of("rotated", "low_rank");

        SweepSpec {
            if (hooks != null && hooks.isEmpty()) { // left out: every hidden layer
                throw ConfigException.of("hooks", "found an empty list; valid: the hooks to sweep, e.g."
                        + " [\"tensor:hidden.0\"], or no \"hooks\" for all hidden layers");
            }
            if (sizes == null || sizes.isEmpty()) {
                throw ConfigException.of("sizes", "found " + (sizes == null ? "nothing" : "an empty list")
                        + "; valid: subspace sizes per variable, e.g. [2, 4, 8]");
            }
            for (int i = 0; i < sizes.size(); i++) {
                Check.atLeast("sizes[" + i + "]", Check.present("sizes[" + i + "]", sizes.get(i), "an integer"), 1);
                if (sizes.indexOf(sizes.get(i)) != i) {
                    throw new ConfigException("sizes[" + i + "]", sizes.get(i), "each size once");
                }
            }
            for (int i = 0; hooks != null && i < hooks.size(); i++) {
                if (hooks.indexOf(hooks.get(i)) != i) {
                    throw new ConfigException("hooks[" + i + "]", hooks.get(i), "each hook once");
                }
            }
            if (method != null && method.isEmpty()) {
                throw ConfigException.of("method", "found an empty list; valid: one or more of rotated, low_rank (or"
                        + " no \"method\" for rotated)");
            }
            for (int i = 0; method != null && i < method.size(); i++) {
                Check.oneOf("method[" + i + "]", method.get(i), METHODS);
                if (method.indexOf(method.get(i)) != i) {
                    throw new ConfigException("method[" + i + "]", method.get(i), "each method once");
                }
            }
        }

        /** The methods, parsed; default {@code rotated} (the DAS paper's shared rotation). */
        List<DasTrainer.Method> methods() {
            if (method == null || method.isEmpty()) {
                return List.of(DasTrainer.Method.ROTATED);
            }
            return method.stream().map(m -> Check.choice("sweep.method", m, DasTrainer.Method.class)).toList();
        }
    }

    /** What an experiment hands back: its resolved settings and report as JSON, and the sweep if one was asked for. */
    record Outcome(JsonNode settings, JsonNode report, DasSweep.Table sweep) {
    }

    /** One experiment the command can run. */
    interface DasExperiment {
        /**
         * Runs with {@code settings} (JSON fields over the experiment's defaults; null for all defaults) and, when
         * {@code sweep} is not null, the sweep. Bad settings or sweep cells must fail before any training.
         */
        Outcome run(JsonNode settings, SweepSpec sweep, Path out, PrintStream progress) throws IOException;
    }

    @Override
    public Integer call() throws Exception {
        DasConfig c = ConfigJson.read(Jreft.configFile(config), DasConfig.class);
        DasExperiment experiment = c.experiment() == null ? null : EXPERIMENTS.get(c.experiment());
        if (experiment == null) {
            throw new ConfigException("experiment", c.experiment(), String.join(", ", EXPERIMENTS.keySet()))
                    .in(config.toString());
        }
        try (OutputFolder folder = OutputFolder.prepare(out, "das")) {
            Path staging = folder.staging();
            Outcome o;
            try {
                o = experiment.run(c.settings(), c.sweep(), staging, System.out);
            } catch (ConfigException e) {
                throw e.in(config.toString());
            }
            ObjectNode report = SNAKE.createObjectNode();
            report.put("experiment", c.experiment());
            report.set("settings", o.settings());
            report.set("report", relocate(o.report(), staging, folder.dir()));
            if (o.sweep() != null) {
                report.set("sweep", rows(o.sweep()));
            }
            Files.write(staging.resolve("report.json"), SNAKE.writeValueAsBytes(report));
            if (o.sweep() != null) {
                o.sweep().writeCsv(staging.resolve("sweep.csv"));
            }
            folder.commit(); // the whole set appears at once: a failed run leaves nothing half-written
            Path reportFile = out.resolve("report.json");
            if (o.sweep() != null) {
                System.out.println();
                System.out.print(o.sweep().aligned());
                System.out.println("report: " + reportFile + ", sweep: " + out.resolve("sweep.csv"));
            } else {
                System.out.println("report: " + reportFile);
            }
        }
        return 0;
    }

    static DasConfig read(Path file) {
        return ConfigJson.read(file, DasConfig.class);
    }

    /**
     * A settings record from JSON: the given fields over {@code defaults}, so a config names only what it changes and
     * fields the record gains later keep their defaults. A field the record does not have is an error listing those
     * it does; every value is checked by the record.
     */
    static <S> S settings(S defaults, JsonNode given, Class<S> type, String experiment) {
        return ConfigJson.overDefaults(defaults, given, type, null, "settings");
    }

    /** Paths in a report that point into the staging folder, pointed at the committed folder instead. */
    static JsonNode relocate(JsonNode n, Path staging, Path dir) {
        if (n.isTextual() && n.textValue().startsWith(staging.toString())) {
            return SNAKE.getNodeFactory().textNode(dir + n.textValue().substring(staging.toString().length()));
        }
        if (n.isObject()) {
            ObjectNode o = (ObjectNode) n;
            o.fieldNames().forEachRemaining(k -> o.set(k, relocate(o.get(k), staging, dir)));
        }
        return n;
    }

    /** The sweep's rows for report.json. */
    static ArrayNode rows(DasSweep.Table t) {
        ArrayNode rows = SNAKE.createArrayNode();
        for (DasSweep.Row r : t.rows()) {
            ObjectNode row = rows.addObject();
            row.put("hook", r.hook());
            row.put("position", r.position());
            row.put("method", r.method().name().toLowerCase(Locale.ROOT));
            row.put("size", r.size());
            row.put("iia", r.iia());
            row.put("control_iia", r.controlIia());
            row.put("seconds", r.seconds());
            ObjectNode bySet = row.putObject("iia_by_set");
            r.iiaBySet().forEach(bySet::put);
        }
        return rows;
    }
}
