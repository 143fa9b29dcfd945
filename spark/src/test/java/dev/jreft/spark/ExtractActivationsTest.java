package dev.jreft.spark;

import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The job as a user runs it: a text file in, Parquet out, a second run resumes; bad input is one line, exit 2. */
class ExtractActivationsTest {
    @Test
    void theJobWritesResumesAndRefusesBadInput(@TempDir Path tmp) throws Exception {
        Path texts = Files.write(tmp.resolve("texts.txt"), ActivationDatasetsTest.TEXTS);
        Path out = tmp.resolve("acts");
        String[] args = {"--texts", texts.toString(), "--hooks", "blocks.1.block_output", "--positions", "l1",
                "--chunk-size", "4", "--master", "local[2]", "--out", out.toString()};
        String first = run(args);
        assertTrue(first.startsWith("0|wrote " + out + ": 7 texts, 7 rows (text x position), 2 chunks written, 0 kept"),
                first);
        String again = run(args);
        assertTrue(again.contains("0 chunks written, 2 kept from an earlier run"), again);
        try (SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", "false")
                .getOrCreate()) {
            assertEquals(7, spark.read().parquet(out.toString()).select("id").distinct().count());
        }
        String bad = run("--texts", texts.toString(), "--hooks", "blocks.1.block_output", "--positions", "mid",
                "--out", tmp.resolve("never").toString());
        assertTrue(bad.startsWith("2|jreft-spark: --positions: found 'mid'") && !bad.strip().contains("\n"), bad);
        assertFalse(Files.exists(tmp.resolve("never")));
        for (String[] c : new String[][] {{"--batch-size", "0", "--batch-size: found 0; valid: an integer >= 1"},
                {"--chunk-size", "0", "--chunk-size: found 0; valid: an integer >= 1"},
                {"--partitions", "-1", "--partitions: found -1; valid: an integer >= 0"}}) {
            String r = run("--texts", texts.toString(), "--hooks", "blocks.1.block_output", c[0], c[1], "--out",
                    tmp.resolve("never").toString());
            assertTrue(r.startsWith("2|jreft-spark: " + c[2]), r);
            assertFalse(Files.exists(tmp.resolve("never")), c[0]);
        }
        String missing = run("--texts", tmp.resolve("none.txt").toString(), "--hooks", "blocks.1.block_output",
                "--out", tmp.resolve("never").toString());
        assertTrue(missing.startsWith("2|jreft-spark: --texts: found"), missing);
    }

    /**
     * The DAS sweep job on a small hierarchical-equality config: the MLP, sweep.csv and index.json under --out;
     * a config it cannot run is one line, before any training.
     */
    @Test
    void theDasSweepJobWritesItsSweepAndRefusesOtherConfigs(@TempDir Path tmp) throws Exception {
        Path config = Files.writeString(tmp.resolve("das.json"), """
                {"experiment": "hierarchical-equality",
                 "settings": {"hidden": 8, "train_examples": 2000, "mlp_epochs": 1, "mlp_batch_size": 256,
                              "das_examples": 512, "das_epochs": 1, "das_batch_size": 256, "test_examples": 100,
                              "subspace": 2},
                 "sweep": {"hooks": ["tensor:hidden.1"], "sizes": [2], "method": "rotated"}}
                """);
        Path out = tmp.resolve("das");
        String ok = runDas("--config", config.toString(), "--master", "local[2]", "--out", out.toString());
        assertTrue(ok.startsWith("0|sweep: 1 cells in"), ok);
        assertTrue(Files.readString(out.resolve("sweep.csv")).startsWith("hook,position,method,size,iia"));
        Path other = Files.writeString(tmp.resolve("neg.json"), "{\"experiment\": \"negation-probe\"}");
        String bad = runDas("--config", other.toString(), "--out", tmp.resolve("never").toString());
        assertTrue(bad.startsWith("2|jreft-spark: " + other + ": experiment: found 'negation-probe'; valid:"
                + " hierarchical-equality"), bad);
        Path noSweep = Files.writeString(tmp.resolve("nosweep.json"), "{\"experiment\": \"hierarchical-equality\"}");
        String none = runDas("--config", noSweep.toString(), "--out", tmp.resolve("never").toString());
        assertTrue(none.startsWith("2|jreft-spark: " + noSweep + ": sweep: found none"), none);
        Path badSize = Files.writeString(tmp.resolve("size.json"), """
                {"experiment": "hierarchical-equality", "sweep": {"sizes": [99]}}""");
        String size = runDas("--config", badSize.toString(), "--out", tmp.resolve("never").toString());
        assertTrue(size.startsWith("2|jreft-spark: sweep.sizes[0]: found 99"), size);
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    private static String runDas(String... args) {
        return capture(() -> ExtractActivations.withErrors(new picocli.CommandLine(new DasSweepJob())).execute(args));
    }

    private static String run(String... args) {
        return capture(() -> ExtractActivations.execute(args));
    }

    /** exit code | the last line of standard output, or all of standard error. */
    static String capture(java.util.function.IntSupplier job) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true));
            System.setErr(new PrintStream(e, true));
            int code = job.getAsInt();
            String[] lines = (code == 0 ? o : e).toString().strip().split("\\R");
            return code + "|" + (code == 0 ? lines[lines.length - 1] : e.toString());
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }
}
