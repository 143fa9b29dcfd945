package dev.jreft.spark;

import dev.jreft.analysis.ActivationPatching;
import dev.jreft.analysis.SweepConfig;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The patching sweep as a Spark job in local[2], one task per hook, writes the single-machine sweep's files. */
class PatchingSweepsTest {
    @Test
    void theSparkSweepIsTheSingleMachineSweep(@TempDir Path tmp) throws Exception {
        Path config = Files.writeString(tmp.resolve("sweep.json"), """
                {"base": "The movie was wonderful.", "source": "The movie was terrible.",
                 "hooks": ["blocks.1.attention_output", "blocks.4.block_output", "blocks.5.mlp_output"],
                 "patching": "both"}""");
        SweepConfig c = dev.jreft.hooks.io.ConfigJson.read(config, SweepConfig.class);
        HookedModel m = ExecutorModels.get(ActivationDatasets.EMBEDDED, null);
        List<String> hooks = c.hooksOf(m);
        Batch base = m.tokenize(List.of(c.base()));
        Batch source = m.tokenize(List.of(c.source()));
        ActivationPatching.Metric metric = c.metricOf(m, base, source);
        Path single = Files.createDirectory(tmp.resolve("single"));
        c.write(single, hooks, ActivationPatching.activation(m, base, source, hooks, metric),
                ActivationPatching.attribution(m, base, source, hooks, metric), m.tokenizer().orElseThrow()
                        .tokens(c.base()));
        Path out = tmp.resolve("spark");
        String ok = run("--config", config.toString(), "--master", "local[2]", "--out", out.toString());
        assertTrue(ok.startsWith("0|sweep: 3 hooks × "), ok);
        List<String> csv = Files.readAllLines(out.resolve("sweep.csv"));
        assertEquals(Files.readAllLines(single.resolve("sweep.csv")), csv);
        assertTrue(csv.stream().skip(1).anyMatch(l -> !l.endsWith(",0.000000,0.000000")), "a cell moved:\n" + csv);
        assertTrue(Files.isRegularFile(out.resolve("sweep-activation.png")) && Files.isRegularFile(out.resolve(
                "sweep-attribution.svg")));

        try (SparkSession spark = SparkSession.builder().master("local[2]").appName("jreft-sweep")
                .config("spark.ui.enabled", "false").getOrCreate()) {
            PatchingSweeps.Result r = PatchingSweeps.run(spark, ActivationDatasets.EMBEDDED, null, c, hooks);
            List<Row> frame = PatchingSweeps.toDataFrame(spark, r, hooks, m.tokenizer().orElseThrow().tokens(
                    c.base()), false).collectAsList();
            assertEquals(csv.size() - 1, frame.size());
            Row last = frame.get(frame.size() - 1);
            assertEquals("blocks.5.mlp_output", last.getString(0));
            assertEquals(csv.get(csv.size() - 1), String.format(java.util.Locale.ROOT, "%s,%d,\"%s\",%.6f,%.6f",
                    last.getString(0), last.getInt(1), last.getString(2), last.getDouble(3), last.getDouble(4)));
        }

        Path bad = Files.writeString(tmp.resolve("bad.json"), """
                {"base": "a", "source": "b", "hooks": ["blocks.9.block_output"]}""");
        String unknown = run("--config", bad.toString(), "--out", tmp.resolve("never").toString());
        assertTrue(unknown.startsWith("2|jreft-spark: ") && unknown.contains("blocks.9.block_output"), unknown);
        assertFalse(unknown.contains("\tat "), unknown);
        String absent = run("--config", tmp.resolve("absent.json").toString(), "--out", tmp.resolve("never")
                .toString());
        assertTrue(absent.startsWith("2|jreft-spark: ") && absent.contains("absent.json"), absent);
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    @Test
    void aSweepAcrossHeadsIsTheSingleMachineSweep(@TempDir Path tmp) throws Exception {
        Path config = Files.writeString(tmp.resolve("heads.json"), """
                {"base": "The movie was wonderful.", "source": "The movie was terrible.",
                 "hooks": ["blocks.2.attention_value_output", "blocks.5.attention_value_output"],
                 "patching": "activation", "across": "heads"}""");
        SweepConfig c = dev.jreft.hooks.io.ConfigJson.read(config, SweepConfig.class);
        HookedModel m = ExecutorModels.get(ActivationDatasets.EMBEDDED, null);
        Batch base = m.tokenize(List.of(c.base()));
        Batch source = m.tokenize(List.of(c.source()));
        Path single = Files.createDirectory(tmp.resolve("single"));
        c.write(single, c.hooksOf(m), ActivationPatching.activationByHead(m, base, source, c.hooksOf(m),
                c.metricOf(m, base, source)), null, List.of());
        Path out = tmp.resolve("spark");
        String ok = run("--config", config.toString(), "--master", "local[2]", "--out", out.toString());
        assertTrue(ok.startsWith("0|sweep: 2 hooks × 12 heads"), ok);
        List<String> csv = Files.readAllLines(out.resolve("sweep.csv"));
        assertEquals("hook,head,activation,attribution", csv.get(0));
        assertEquals(1 + 2 * 12, csv.size());
        assertEquals(Files.readAllLines(single.resolve("sweep.csv")), csv);
        assertFalse(Files.exists(out.resolve("sweep-attribution.png")), "attribution was not asked for");
    }

    private static String run(String... args) {
        return ExtractActivationsTest.capture(() -> ExtractActivations.withErrors(new picocli.CommandLine(
                new PatchingSweepJob())).execute(args));
    }
}
