package dev.jreft.spark;

import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.ReftClassifier;
import dev.jreft.training.TrainConfig;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.TrainingResult;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two barrier workers in local[2], each stepping on its share of every batch, train the parameters one process
 * trains on the same batches: for a ReFT and for a weight-space method, with shares of unequal size.
 */
class DataParallelTrainingTest {
    @TempDir
    static Path tmp;

    @BeforeAll
    static void data() throws Exception {
        StringBuilder b = new StringBuilder();
        String[] good = {"great", "wonderful", "excellent", "lovely"};
        String[] bad = {"awful", "terrible", "horrible", "boring"};
        for (String f : new String[] {"The film was %s.", "What a %s meal.", "Service is %s.", "%s acting."}) {
            for (int i = 0; i < good.length; i++) {
                b.append("{\"text\": \"").append(String.format(f, good[i])).append("\", \"label\": 1}\n");
                b.append("{\"text\": \"").append(String.format(f, bad[i])).append("\", \"label\": 0}\n");
            }
        }
        Files.writeString(tmp.resolve("train.jsonl"), b);
    }

    static String config(String method, String out) {
        return """
                {"model": "minilm",
                 "data": {"train": "%1$s/train.jsonl", "dev": "%1$s/train.jsonl"},
                 %2$s,
                 "training": {"epochs": 1, "batch_size": 5, "learning_rate": 0.01, "weight_decay": 0, "warmup_ratio": 0,
                              "max_grad_norm": 1, "seed": 3, "eval_every": 0, "patience": 0, "optimizer": "adamw",
                              "max_length": 32},
                 "output": "%3$s"}
                """.formatted(tmp.toString().replace("\\", "/"), method, tmp.resolve(out).toString()
                .replace("\\", "/"));
    }

    static final String LOREFT = "\"reft\": {\"intervention\": \"loreft\", \"hooks\": [\"blocks.2.block_output\"],"
            + " \"rank\": 2, \"dropout\": 0}";
    static final String LORA = "\"method\": \"lora\", \"lora\": {\"target_modules\": [\"query\", \"value\"], \"r\": 2,"
            + " \"lora_dropout\": 0}";

    @Test
    void twoWorkersTrainALoReftAsOneProcessDoes() throws Exception {
        assertSameAsOneProcess(config(LOREFT, "unused"));
    }

    @Test
    void twoWorkersTrainALoraAsOneProcessDoes() throws Exception {
        assertSameAsOneProcess(config(LORA, "unused"));
    }

    private static void assertSameAsOneProcess(String json) throws Exception {
        TrainConfig c = TrainConfig.parse(json, "train.json");
        HookedModel m = c.loadModel(Path.of(""));
        TrainingArguments args = c.arguments();
        TrainConfig.Split split = c.data().load(Path.of(""));
        ReftClassifier alone = ReftClassifier.create(m, c.classifierConfig(m), args.seed());
        TrainingResult one = alone.train(split.train(), split.dev(), args, null);
        ReftClassifier shared = ReftClassifier.create(m, c.classifierConfig(m), args.seed());
        TrainingResult two;
        // a session per test: the job test's session (the same one, got or created) is closed when the job ends
        try (SparkSession spark = SparkSession.builder().master("local[2]").appName("jreft-dp")
                .config("spark.ui.enabled", "false").getOrCreate()) {
            two = DataParallelTraining.train(spark, json, "train.json", ActivationDatasets.EMBEDDED, null, shared,
                    split, args, 2, null);
        }
        assertEquals(one.steps(), two.steps());
        assertEquals(6, two.steps(), "32 examples: 6 whole batches of 5 (shares of 3 and 2)");
        for (int i = 0; i < one.losses().size(); i++) {
            assertEquals(one.losses().get(i), two.losses().get(i), 1e-4, "loss of step " + i);
        }
        assertEquals(one.bestDevAccuracy(), two.bestDevAccuracy(), 1e-12);
        double moved = 0;
        ReftClassifier fresh = ReftClassifier.create(m, c.classifierConfig(m), args.seed());
        for (Map.Entry<String, INDArray> e : alone.parameters().entrySet()) {
            INDArray other = shared.parameters().get(e.getKey());
            double diff = e.getValue().sub(other).amaxNumber().doubleValue();
            assertTrue(diff < 1e-4, e.getKey() + " differs by " + diff);
            moved = Math.max(moved, e.getValue().sub(fresh.parameters().get(e.getKey())).amaxNumber().doubleValue());
        }
        assertTrue(moved > 1e-3, "training moved the parameters (" + moved + ")");
    }

    @Test
    void theTrainJobWritesACheckpointAndRefusesWorkersItCannotStart() throws Exception {
        Path config = Files.writeString(tmp.resolve("job.json"), config(LOREFT, "run"));
        Path metrics = tmp.resolve("m.json");
        String ok = run("--config", config.toString(), "--master", "local[2]", "--workers", "2", "--metrics",
                metrics.toString());
        assertTrue(ok.startsWith("0|checkpoint: "), ok);
        assertTrue(ok.contains("(2 workers)"), ok);
        assertTrue(Files.isRegularFile(tmp.resolve("run/tensors.safetensors")));
        assertEquals(6, new com.fasterxml.jackson.databind.ObjectMapper().readTree(metrics.toFile()).get("steps")
                .asInt());
        Path other = Files.writeString(tmp.resolve("other.json"), config(LOREFT, "never"));
        String many = run("--config", other.toString(), "--master", "local[2]", "--workers", "3");
        assertTrue(many.startsWith("2|jreft-spark: --workers: found 3; valid: 1..2 (the task slots of local[2]"),
                many);
        String none = run("--config", other.toString(), "--master", "local[2]", "--workers", "0");
        assertTrue(none.startsWith("2|jreft-spark: --workers: found 0; valid: 1..2"), none);
        Path big = Files.writeString(tmp.resolve("big.json"), config(LOREFT, "never").replace("\"batch_size\": 5",
                "\"batch_size\": 1"));
        String batch = run("--config", big.toString(), "--master", "local[2]", "--workers", "2");
        assertTrue(batch.startsWith("2|jreft-spark: " + big + ": training.batch_size: found 1; valid: at least the 2"
                + " workers"), batch);
        String missing = run("--config", tmp.resolve("absent.json").toString());
        assertTrue(missing.startsWith("2|jreft-spark: --config: found"), missing);
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    private static String run(String... args) {
        return ExtractActivationsTest.capture(() -> ExtractActivations.withErrors(new picocli.CommandLine(
                new TrainJob())).execute(args));
    }
}
