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
    }

    /** exit code | the last line of standard output, or all of standard error. */
    private static String run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true));
            System.setErr(new PrintStream(e, true));
            int code = ExtractActivations.execute(args);
            String[] lines = (code == 0 ? o : e).toString().strip().split("\\R");
            return code + "|" + (code == 0 ? lines[lines.length - 1] : e.toString());
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }
}
