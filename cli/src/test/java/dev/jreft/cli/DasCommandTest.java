package dev.jreft.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.das.HierarchicalEqualityExperiment.Settings;
import dev.jreft.das.HierarchicalEqualitySweep;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DasCommandTest {
    /** Small enough to train the MLP and sweep four cells in seconds; the rest of the settings keep defaults. */
    static final String TINY_SETTINGS = """
            {"hidden": 8, "train_examples": 1000, "mlp_epochs": 2, "mlp_batch_size": 64, "das_examples": 128,
             "das_epochs": 1, "das_batch_size": 64, "test_examples": 100, "subspace": 2}""";

    static Path config(Path dir, String json) throws Exception {
        Path f = dir.resolve("das.json");
        Files.writeString(f, json);
        return f;
    }

    static CliTest.Run das(Path dir, String json) throws Exception {
        return CliTest.jreft("das", "--config", config(dir, json).toString(), "--out", dir.resolve("out").toString());
    }

    @Test
    void aTinyConfigWritesTheReportAndTheSweepTable(@TempDir Path tmp) throws Exception {
        CliTest.Run r = das(tmp, """
                {"experiment": "hierarchical-equality", "settings": %s,
                 "sweep": {"hooks": ["tensor:hidden.0", "tensor:hidden.2"], "sizes": [1, 2], "method": "rotated"}}
                """.formatted(TINY_SETTINGS));
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("factual accuracy (MLP trained with jreft's autodiff)"), r.out());
        assertTrue(r.out().contains("hook             position  method   size"), r.out());

        JsonNode report = new ObjectMapper().readTree(tmp.resolve("out/report.json").toFile());
        assertEquals("hierarchical-equality", report.get("experiment").asText());
        assertEquals(8, report.at("/settings/hidden").asInt());
        assertEquals(4, report.at("/settings/dim").asInt(), "fields the config leaves out keep their defaults");
        assertTrue(report.at("/report/factual_accuracy").isNumber(), report.toString());
        assertEquals(4, report.get("sweep").size());

        List<String> csv = Files.readAllLines(tmp.resolve("out/sweep.csv"));
        assertEquals("hook,position,method,size,iia,control_iia,seconds,iia[WX],iia[YZ],iia[WX+YZ]", csv.get(0));
        assertEquals(1 + 4, csv.size());
        assertTrue(csv.get(4).startsWith("tensor:hidden.2,0,rotated,2,"), csv.get(4));

        // the cell at hidden.0 with the experiment's subspace size repeats the experiment's own DAS run
        JsonNode cell = report.get("sweep").get(1);
        assertEquals("tensor:hidden.0", cell.get("hook").asText());
        assertEquals(2, cell.get("size").asInt());
        assertEquals(report.at("/report/iia_wx").asDouble(), cell.at("/iia_by_set/WX").asDouble(), 1e-9);
        assertEquals(report.at("/report/iia_yz").asDouble(), cell.at("/iia_by_set/YZ").asDouble(), 1e-9);
        assertEquals(report.at("/report/iia_both").asDouble(), cell.at("/iia_by_set/WX+YZ").asDouble(), 1e-9);
    }

    static void assertClearError(CliTest.Run r, String... parts) {
        assertEquals(2, r.code(), r.out() + r.err());
        for (String p : parts) {
            assertTrue(r.err().contains(p), "'" + p + "' missing from: " + r.err());
        }
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), "no stack trace: " + r.err());
    }

    @Test
    void badConfigsNameTheProblemAndWhatIsValid(@TempDir Path tmp) throws Exception {
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equalty\"}"),
                "experiment: found 'hierarchical-equalty'; valid: hierarchical-equality, minilm-negation");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"sweeps\": {}}"),
                "found unknown field 'sweeps'; valid: fields experiment, settings, sweep");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"settings\": {\"hiden\": 8}}"),
                "settings: found unknown field 'hiden'; valid: fields", "hidden", "das_learning_rate");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"settings\": {\"hidden\": 8.5}}"),
                "settings.hidden: found 8.5; valid: an integer");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"sweep\": {\"size\": [2]}}"),
                "sweep: found unknown field 'size'; valid: fields hooks, method, sizes");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"settings\": " + TINY_SETTINGS
                        + ", \"sweep\": {\"sizes\": [2, 5]}}"),
                "sweep.sizes[1]: found 5; valid: 1..4 for hook tensor:hidden.0 of width 8");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"sweep\": {\"hooks\":"
                        + " [\"tensor:hidden.3\"], \"sizes\": [2]}}"),
                "sweep.hooks[0]: found 'tensor:hidden.3'; valid: tensor:hidden.0, tensor:hidden.1, tensor:hidden.2");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"sweep\": {\"sizes\": [2],"
                        + " \"method\": \"lowrank\"}}"),
                "sweep.method[0]: found 'lowrank'; valid: rotated, low_rank");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"settings\": {\"subspace\": 9}}"),
                "settings.subspace: found 9; valid: an integer in 1..8");
        assertClearError(das(tmp, "{\"settings\": {}}"), "experiment: found null; valid: hierarchical-equality");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\","
                        + " \"settings\": {\"das_examples\": 10}}"),
                "settings.das_examples: found 10; valid: an integer in das_batch_size (1024)..4194304");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\", \"settings\":"
                        + " {\"das_learning_rate\": -1}}"),
                "settings.das_learning_rate: found -1.0; valid: a number in (0, 10]");
        assertClearError(das(tmp, "{\"experiment\": \"hierarchical-equality\""),
                "not valid JSON");
        assertFalse(Files.exists(tmp.resolve("out/report.json")), "no run started");
    }

    @Test
    void theExampleConfigShowsTheDefaultsAndAValidSweep() {
        Path example = Path.of("../examples/das-hierarchical-equality.json");
        DasCommand.DasConfig c = DasCommand.read(example);
        assertTrue(DasCommand.EXPERIMENTS.containsKey(c.experiment()), c.experiment());
        Settings s = DasCommand.settings(Settings.defaults(), c.settings(), Settings.class, c.experiment());
        assertEquals(Settings.defaults(), s, "the example should show the experiment's current defaults");
        HierarchicalEqualitySweep.check(s, c.sweep().hooks(), c.sweep().sizes(), c.sweep().methods());
    }
}
