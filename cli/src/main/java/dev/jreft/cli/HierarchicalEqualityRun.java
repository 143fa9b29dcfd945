package dev.jreft.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.das.DasSweep;
import dev.jreft.das.HierarchicalEqualityExperiment;
import dev.jreft.das.HierarchicalEqualityExperiment.Settings;
import dev.jreft.das.HierarchicalEqualitySweep;
import dev.jreft.das.train.DasTrainer;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

/** {@code "experiment": "hierarchical-equality"}: the MLP trained and searched by DAS, then the optional sweep. */
final class HierarchicalEqualityRun implements DasCommand.DasExperiment {
    static final String NAME = "hierarchical-equality";

    @Override
    public DasCommand.Outcome run(JsonNode settingsJson, DasCommand.SweepSpec sweep, Path out, PrintStream progress)
            throws IOException {
        Settings s = DasCommand.settings(Settings.defaults(), settingsJson, Settings.class, NAME);
        List<DasTrainer.Method> methods = null;
        if (sweep != null) {
            methods = sweep.methods();
            try {
                HierarchicalEqualitySweep.check(s, sweep.hooks(), sweep.sizes(), methods);
            } catch (IllegalArgumentException e) {
                throw dev.jreft.hooks.io.ConfigException.within("sweep", e);
            }
        }
        HierarchicalEqualityExperiment.Report report = HierarchicalEqualityExperiment.run(s, out, progress);
        HierarchicalEqualityExperiment.print(report, progress);
        DasSweep.Table table = sweep == null ? null : HierarchicalEqualitySweep.run(s, report.model(), sweep.hooks(),
                sweep.sizes(), methods, progress);
        ObjectNode reportJson = DasCommand.SNAKE.valueToTree(report);
        reportJson.put("model", report.model().toString());
        return new DasCommand.Outcome(DasCommand.SNAKE.valueToTree(s), reportJson, table);
    }
}
