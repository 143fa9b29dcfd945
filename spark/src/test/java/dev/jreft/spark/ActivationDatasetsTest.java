package dev.jreft.spark;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Activation datasets in local[2] on the embedded MiniLM, against the single-process cache. */
class ActivationDatasetsTest {
    private static SparkSession spark;
    static final List<String> TEXTS = List.of("The movie was wonderful.", "A dull, lifeless film.",
            "I loved every minute of it, truly.", "Bad.", "Not my kind of story, but well told.",
            "An instant classic.", "The plot made no sense at all and the acting was worse.");
    static final List<String> HOOKS = List.of("blocks.0.block_output", "blocks.5.block_output");

    @BeforeAll
    static void start() {
        spark = SparkSession.builder().master("local[2]").appName("jreft-test").config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2").getOrCreate();
    }

    @AfterAll
    static void stop() throws Exception {
        spark.close();
    }

    static Dataset<Row> texts(List<String> texts) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            rows.add(RowFactory.create((long) (100 + i), texts.get(i))); // ids need not start at 0
        }
        return spark.createDataFrame(rows, DataTypes.createStructType(List.of(
                DataTypes.createStructField("id", DataTypes.LongType, false),
                DataTypes.createStructField("text", DataTypes.StringType, true)))).repartition(2);
    }

    /** (id, position) -> the row, from collected rows. */
    static Map<String, Row> byKey(List<Row> rows) {
        Map<String, Row> m = new TreeMap<>();
        for (Row r : rows) {
            m.put(r.getLong(r.fieldIndex("id")) + "/" + r.getInt(r.fieldIndex("position")), r);
        }
        return m;
    }

    @Test
    void everyRealTokenOfEveryTextMatchesTheSingleProcessCache() {
        var spec = new ActivationDatasets.Spec("minilm", null, HOOKS, "all", 3);
        Map<String, Row> rows = byKey(ActivationDatasets.extract(texts(TEXTS), spec).collectAsList());
        HookedModel m = HookedModel.minilm();
        Batch batch = m.tokenize(TEXTS);
        ActivationCache cache = m.runWithCache(batch, HOOKS);
        int real = 0;
        double worst = 0;
        for (int i = 0; i < TEXTS.size(); i++) {
            for (int p = 0; p <= batch.lastReal(i); p++, real++) {
                Row r = rows.get((100 + i) + "/" + p);
                assertEquals(batch.inputs().get(Batch.INPUT_IDS).getLong(i, p), r.getLong(2), "token " + i + "/" + p);
                for (String hook : HOOKS) {
                    float[] want = cache.get(hook).get(NDArrayIndex.point(i), NDArrayIndex.point(p), NDArrayIndex.all())
                            .toFloatVector();
                    List<Float> got = r.getList(r.fieldIndex(ActivationDatasets.column(hook)));
                    assertEquals(want.length, got.size());
                    for (int d = 0; d < want.length; d++) {
                        worst = Math.max(worst, Math.abs(want[d] - got.get(d)));
                    }
                }
            }
        }
        assertEquals(real, rows.size(), "one row per text and real token");
        assertTrue(worst < 1e-4, "worst difference " + worst);
    }

    @Test
    void positionSpecsPickTheFirstAndLastTokens() {
        var spec = new ActivationDatasets.Spec("minilm", null, List.of("blocks.2.block_output"), "f1+l1", 4);
        Map<String, Row> rows = byKey(ActivationDatasets.extract(texts(TEXTS), spec).collectAsList());
        Batch batch = HookedModel.minilm().tokenize(TEXTS);
        assertEquals(2 * TEXTS.size(), rows.size());
        for (int i = 0; i < TEXTS.size(); i++) {
            assertTrue(rows.containsKey((100 + i) + "/0"));
            assertTrue(rows.containsKey((100 + i) + "/" + batch.lastReal(i)));
        }
    }

    @Test
    void chunksAreWrittenWithMetadataAndARerunResumesWhatIsMissing(@TempDir Path tmp) throws Exception {
        var spec = new ActivationDatasets.Spec("minilm", null, HOOKS, "all", 2);
        Path out = tmp.resolve("acts");
        var first = ActivationDatasets.write(spark, texts(TEXTS), spec, out, 3);
        assertEquals(7, first.examples());
        assertEquals(3, first.written());
        assertEquals(0, first.kept());
        Dataset<Row> back = spark.read().parquet(out.toString());
        var field = back.schema().apply(ActivationDatasets.column(HOOKS.get(1)));
        assertEquals(HOOKS.get(1), field.metadata().getString("jreft.hook"));
        assertEquals(HookedModel.minilm().fingerprint(), field.metadata().getString("jreft.model_fingerprint"));
        Map<String, Row> expected = byKey(ActivationDatasets.extract(texts(TEXTS), spec).collectAsList());
        assertEquals(expected.size(), first.rows());
        // a job that died while writing chunk 1: its folder has no _SUCCESS
        Path broken = out.resolve(ActivationDatasets.chunkName(1));
        Files.delete(broken.resolve("_SUCCESS"));
        long kept = Files.getLastModifiedTime(out.resolve(ActivationDatasets.chunkName(0))).toMillis();
        var again = ActivationDatasets.write(spark, texts(TEXTS), spec, out, 3);
        assertEquals(1, again.written());
        assertEquals(2, again.kept());
        assertEquals(kept, Files.getLastModifiedTime(out.resolve(ActivationDatasets.chunkName(0))).toMillis());
        Map<String, Row> resumed = byKey(spark.read().parquet(out.toString()).collectAsList());
        assertEquals(expected.keySet(), resumed.keySet());
        for (var e : expected.entrySet()) {
            for (String hook : HOOKS) {
                String c = ActivationDatasets.column(hook);
                assertEquals(e.getValue().getList(e.getValue().fieldIndex(c)), resumed.get(e.getKey())
                        .getList(resumed.get(e.getKey()).fieldIndex(c)), e.getKey());
            }
        }
        // chunks hold texts by ascending id: chunk 0 has ids 100..102
        List<Long> chunk0 = spark.read().parquet(out.resolve(ActivationDatasets.chunkName(0)).toString())
                .select("id").distinct().as(org.apache.spark.sql.Encoders.LONG()).collectAsList();
        assertEquals(List.of(100L, 101L, 102L), chunk0.stream().sorted().toList());
        // another spec cannot resume this folder
        var other = new ActivationDatasets.Spec("minilm", null, HOOKS, "f1+l1", 2);
        var e = assertThrows(ConfigException.class, () -> ActivationDatasets.write(spark, texts(TEXTS), other, out, 3));
        assertTrue(e.getMessage().startsWith("--out: found an earlier run for"), e.getMessage());
    }

    @Test
    void badInputIsOneLineBeforeAnyWork(@TempDir Path tmp) throws Exception {
        var unknown = assertThrows(ConfigException.class, () -> ActivationDatasets.extract(texts(TEXTS),
                new ActivationDatasets.Spec("minilm", null, List.of("blocks.9.block_output"), "all", 2)));
        assertTrue(unknown.getMessage().startsWith("hooks[0]: unknown hook 'blocks.9.block_output'"), unknown.getMessage());
        var positions = assertThrows(ConfigException.class, () -> new ActivationDatasets.Spec("minilm", null, HOOKS,
                "middle", 2));
        assertTrue(positions.getMessage().startsWith("positions: found 'middle'; valid: all (every real token), or a"
                + " pyreft spec"), positions.getMessage());
        Path foreign = Files.createDirectories(tmp.resolve("mine"));
        Files.writeString(foreign.resolve("notes.txt"), "mine");
        var out = assertThrows(ConfigException.class, () -> ActivationDatasets.write(spark, texts(TEXTS),
                new ActivationDatasets.Spec("minilm", null, HOOKS, "all", 2), foreign, 3));
        assertTrue(out.getMessage().startsWith("--out: found") && out.getMessage().contains("jreft did not write"),
                out.getMessage());
        assertEquals("mine", Files.readString(foreign.resolve("notes.txt")));
        List<Row> dup = List.of(RowFactory.create(1L, "a"), RowFactory.create(1L, "b"));
        Dataset<Row> twice = spark.createDataFrame(dup, texts(TEXTS).schema());
        var repeated = assertThrows(ConfigException.class, () -> ActivationDatasets.write(spark, twice,
                new ActivationDatasets.Spec("minilm", null, HOOKS, "all", 2), tmp.resolve("dup"), 3));
        assertTrue(repeated.getMessage().startsWith("texts.id: found 1 repeated ids"), repeated.getMessage());
    }
}
