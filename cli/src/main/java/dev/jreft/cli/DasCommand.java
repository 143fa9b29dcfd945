package dev.jreft.cli;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.das.DasSweep;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.hooks.io.AtomicFiles;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "das", description = "Run a distributed alignment search experiment from a JSON config (experiment,"
        + " optional settings, optional sweep over hooks and subspace sizes); prints the report and the sweep table"
        + " and writes report.json and sweep.csv into --out.")
final class DasCommand implements Callable<Integer> {
    /** The experiments a config can name; each resolves its settings and checks its sweep before any training. */
    static final Map<String, DasExperiment> EXPERIMENTS = new TreeMap<>(Map.of(
            HierarchicalEqualityRun.NAME, new HierarchicalEqualityRun(),
            NegationProbeRun.NAME, new NegationProbeRun()));

    /** Reads configs: unknown fields are errors, so a misspelt setting never silently falls back to its default. */
    static final ObjectMapper CONFIG = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT);

    /** Settings records in their JSON form (snake_case, as every jreft config). */
    static final ObjectMapper SNAKE = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .enable(SerializationFeature.INDENT_OUTPUT);

    @Option(names = "--config", required = true, description = "experiment config (JSON), e.g."
            + " examples/das-hierarchical-equality.json")
    Path config;

    @Option(names = "--out", defaultValue = "runs/das", description = "folder for report.json, sweep.csv and the"
            + " experiment's model (default: ${DEFAULT-VALUE})")
    Path out;

    /** A config file: which experiment, its settings over the defaults, and an optional sweep. */
    record DasConfig(String experiment, JsonNode settings, SweepSpec sweep) {
    }

    /** The sweep grid; {@code method} is one name or a list of names. */
    record SweepSpec(List<String> hooks, List<Integer> sizes,
                     @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> method) {
        /** The methods, parsed; default {@code rotated} (the DAS paper's shared rotation). */
        List<DasTrainer.Method> methods() {
            if (method == null || method.isEmpty()) {
                return List.of(DasTrainer.Method.ROTATED);
            }
            List<DasTrainer.Method> out = new ArrayList<>();
            for (String m : method) {
                try {
                    out.add(DasTrainer.Method.valueOf(m.toUpperCase(Locale.ROOT).replace('-', '_')));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("unknown DAS method '" + m + "' in sweep.method; valid methods:"
                            + " rotated, low_rank");
                }
            }
            return out;
        }

        List<Integer> requiredSizes() {
            if (sizes == null || sizes.isEmpty()) {
                throw new IllegalArgumentException("sweep.sizes must list subspace sizes per variable, e.g. [2, 4, 8]");
            }
            return sizes;
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
        DasConfig c = read(config);
        DasExperiment experiment = c.experiment() == null ? null : EXPERIMENTS.get(c.experiment());
        if (experiment == null) {
            throw new IllegalArgumentException((c.experiment() == null ? "the config names no \"experiment\""
                    : "unknown experiment '" + c.experiment() + "'") + "; valid experiments: "
                    + String.join(", ", EXPERIMENTS.keySet()));
        }
        Files.createDirectories(out);
        Outcome o = experiment.run(c.settings(), c.sweep(), out, System.out);
        ObjectNode report = SNAKE.createObjectNode();
        report.put("experiment", c.experiment());
        report.set("settings", o.settings());
        report.set("report", o.report());
        Path reportFile = out.resolve("report.json");
        if (o.sweep() != null) {
            report.set("sweep", rows(o.sweep()));
        }
        AtomicFiles.write(reportFile, SNAKE.writeValueAsBytes(report));
        if (o.sweep() != null) {
            Path csv = out.resolve("sweep.csv");
            o.sweep().writeCsv(csv);
            System.out.println();
            System.out.print(o.sweep().aligned());
            System.out.println("report: " + reportFile + ", sweep: " + csv);
        } else {
            System.out.println("report: " + reportFile);
        }
        return 0;
    }

    static DasConfig read(Path file) {
        try {
            return CONFIG.readValue(file.toFile(), DasConfig.class);
        } catch (UnrecognizedPropertyException e) {
            throw new IllegalArgumentException("unknown field '" + path(e) + "' in " + file + "; valid fields there: "
                    + e.getKnownPropertyIds().stream().map(Object::toString).sorted()
                    .collect(Collectors.joining(", ")));
        } catch (JsonMappingException e) {
            throw new IllegalArgumentException("invalid value at '" + path(e) + "' in " + file + ": "
                    + e.getOriginalMessage());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot parse " + file + " as JSON: " + e.getOriginalMessage()
                    + (e.getLocation() != null ? " (line " + e.getLocation().getLineNr() + ", column "
                    + e.getLocation().getColumnNr() + ")" : ""));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read config " + file + ": " + e.getMessage());
        }
    }

    /** The JSON path of a mapping error, e.g. {@code sweep.sizes[1]}. */
    private static String path(JsonMappingException e) {
        StringBuilder b = new StringBuilder();
        for (JsonMappingException.Reference r : e.getPath()) {
            if (r.getFieldName() != null) {
                b.append(b.length() == 0 ? "" : ".").append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                b.append('[').append(r.getIndex()).append(']');
            }
        }
        return b.toString();
    }

    /**
     * A settings record from JSON: the given fields over {@code defaults}, so a config names only what it changes and
     * fields the record gains later keep their defaults. A field the record does not have is an error listing those
     * it does.
     */
    static <S> S settings(S defaults, JsonNode given, Class<S> type, String experiment) {
        ObjectNode merged = SNAKE.valueToTree(defaults);
        if (given == null || given.isNull()) {
            return defaults;
        }
        if (!given.isObject()) {
            throw new IllegalArgumentException("\"settings\" must be a JSON object of " + experiment + " settings; got "
                    + given.getNodeType().name().toLowerCase(Locale.ROOT));
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = given.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!merged.has(f.getKey())) {
                List<String> valid = new ArrayList<>();
                merged.fieldNames().forEachRemaining(valid::add);
                throw new IllegalArgumentException("unknown field 'settings." + f.getKey() + "' for experiment "
                        + experiment + "; valid settings: " + String.join(", ", valid));
            }
            merged.set(f.getKey(), f.getValue());
        }
        try {
            return SNAKE.treeToValue(merged, type);
        } catch (JsonMappingException e) {
            throw new IllegalArgumentException("invalid value for 'settings." + path(e) + "': "
                    + e.getOriginalMessage());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid settings for " + experiment + ": " + e.getOriginalMessage());
        }
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
