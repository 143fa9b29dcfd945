package dev.jreft.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.das.NegationProbeExperiment;
import dev.jreft.das.NegationProbeExperiment.Settings;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * {@code "experiment": "minilm-negation"}: DAS for the negation variable on templated sentences through MiniLM and
 * a linear sentiment head, one row per hook (the experiment is itself a sweep over layers; the CSV is
 * {@code negation-probe.csv} in --out).
 */
final class NegationProbeRun implements DasCommand.DasExperiment {
    static final String NAME = "minilm-negation";

    @Override
    public DasCommand.Outcome run(JsonNode settingsJson, DasCommand.SweepSpec sweep, Path out, PrintStream progress)
            throws IOException {
        if (sweep != null) {
            throw new IllegalArgumentException("minilm-negation sweeps its hooks itself: list them in settings.hooks"
                    + " and leave out \"sweep\"");
        }
        Settings s = DasCommand.settings(Settings.defaults(), settingsJson, Settings.class, NAME);
        NegationProbeExperiment.Report report = NegationProbeExperiment.run(s, out, progress);
        NegationProbeExperiment.print(report, progress);
        ObjectNode reportJson = DasCommand.SNAKE.valueToTree(report);
        reportJson.put("csv", report.csv().toString());
        return new DasCommand.Outcome(DasCommand.SNAKE.valueToTree(s), reportJson, null);
    }
}
