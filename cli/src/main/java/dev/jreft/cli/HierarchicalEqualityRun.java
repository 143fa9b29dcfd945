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
        check(s);
        List<DasTrainer.Method> methods = null;
        if (sweep != null) {
            methods = sweep.methods();
            HierarchicalEqualitySweep.check(s, sweep.hooks(), sweep.requiredSizes(), methods);
        }
        HierarchicalEqualityExperiment.Report report = HierarchicalEqualityExperiment.run(s, out, progress);
        HierarchicalEqualityExperiment.print(report, progress);
        DasSweep.Table table = sweep == null ? null : HierarchicalEqualitySweep.run(s, report.model(), sweep.hooks(),
                sweep.sizes(), methods, progress);
        ObjectNode reportJson = DasCommand.SNAKE.valueToTree(report);
        reportJson.put("model", report.model().toString());
        return new DasCommand.Outcome(DasCommand.SNAKE.valueToTree(s), reportJson, table);
    }

    /** The experiment's own DAS run puts WX and YZ side by side in one rotation of the first hidden layer. */
    private static void check(Settings s) {
        if (s.hidden() < 2 || s.subspace() < 1 || 2 * s.subspace() > s.hidden()) {
            throw new IllegalArgumentException("settings.subspace " + s.subspace() + " and settings.hidden "
                    + s.hidden() + " do not fit: WX and YZ take subspace coordinates each of the hidden layer, so"
                    + " subspace must be in 1..hidden/2 (1.." + s.hidden() / 2 + ")");
        }
        // the experiment trains DAS in batches of das_batch_size per intervened-variable set
        if (s.dasExamples() < s.dasBatchSize()) {
            throw new IllegalArgumentException("settings.das_examples " + s.dasExamples() + " is less than one DAS"
                    + " batch; it must be at least das_batch_size (" + s.dasBatchSize() + ")");
        }
    }
}
