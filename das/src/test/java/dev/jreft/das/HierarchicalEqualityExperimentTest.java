package dev.jreft.das;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** A small run of the whole experiment: MLP trained and saved, DAS beats the random-rotation control. */
class HierarchicalEqualityExperimentTest {
    @Test
    void smallRunTrainsTheMlpSavesItAndDasBeatsTheControl(@TempDir Path dir) throws Exception {
        var s = new HierarchicalEqualityExperiment.Settings(4, 16, 60_000, 4, 256, 3e-3, 4_000, 3, 256, 1e-2, 1_000,
                8, 7);
        var out = new ByteArrayOutputStream();
        var report = HierarchicalEqualityExperiment.run(s, dir, new PrintStream(out));
        assertTrue(report.factualAccuracy() > 0.9, "factual " + report.factualAccuracy());
        assertTrue(Files.size(report.model()) > 0);
        double iia = (report.iiaWx() + report.iiaYz()) / 2;
        assertTrue(iia > report.controlIia() + 0.1, "DAS " + iia + " vs control " + report.controlIia());
        HierarchicalEqualityExperiment.print(report, new PrintStream(out));
        assertTrue(out.toString().contains("factual accuracy"));
    }
}
