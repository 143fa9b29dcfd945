package dev.jreft.interventions.train;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.config.InterventionConfig;
import dev.jreft.interventions.data.Datasets;
import dev.jreft.interventions.data.LabelledText;
import dev.jreft.interventions.data.SentimentData;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A JSON training run ({@code jreft train --config}): the model, the data (the sentiment set with a split seed, or
 * JSON Lines train/dev/test files), the ReFT setup, the training arguments and the output checkpoint directory.
 */
public record TrainConfig(String model, String tokenizer, DataSpec data, ReftSpec reft, TrainingArguments training,
                          String output) {
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).enable(SerializationFeature.INDENT_OUTPUT);

    /** {@code sentiment}: folder of the sentiment set (fetched if missing) split by {@code split_seed}; or files. */
    public record DataSpec(String sentiment, @JsonProperty("split_seed") Long splitSeed, String train, String dev,
                           String test) {
        public Split load(Path base) {
            if (sentiment != null) {
                var s = SentimentData.split(SentimentData.load(SentimentData.ensure(base.resolve(sentiment))),
                        splitSeed == null ? 42 : splitSeed, 0.7, 0.15);
                return new Split(s.train(), s.dev(), s.test());
            }
            if (train == null) {
                throw new IllegalArgumentException("data needs either \"sentiment\" (a folder) or \"train\" (a .jsonl"
                        + " file, with optional \"dev\" and \"test\")");
            }
            return new Split(Datasets.jsonl(base.resolve(train)), dev == null ? List.of() : Datasets.jsonl(
                    base.resolve(dev)), test == null ? List.of() : Datasets.jsonl(base.resolve(test)));
        }
    }

    /** Train / dev / test examples. */
    public record Split(List<LabelledText> train, List<LabelledText> dev, List<LabelledText> test) {
    }

    /** The ReFT setup, as in the checkpoint's {@code "reft"} section. */
    public record ReftSpec(String intervention, List<String> hooks, Integer rank, String positions,
                           @JsonProperty("share_weights") Boolean shareWeights, Integer classes, String pooling,
                           String activation, Double dropout) {
        public ReftClassifier.Config toConfig() {
            if (hooks == null || hooks.isEmpty()) {
                throw new IllegalArgumentException("reft.hooks must list at least one hook, e.g. [\"blocks.2.block_output\"]");
            }
            return new ReftClassifier.Config(intervention == null ? "loreft" : intervention, hooks,
                    rank == null ? 4 : rank, positions == null ? "f1+l1" : positions,
                    shareWeights != null && shareWeights, classes == null ? 2 : classes,
                    pooling == null ? ClassificationHead.Pooling.MEAN
                            : ClassificationHead.Pooling.valueOf(pooling.toUpperCase()),
                    activation == null ? "linear" : activation, dropout == null ? 0 : dropout);
        }
    }

    public static TrainConfig read(Path file) {
        try {
            return JSON.readValue(file.toFile(), TrainConfig.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read training config " + file + ": " + e.getMessage(), e);
        }
    }

    /** Trains, saves the checkpoint to {@code output} and writes {@code metricsFile}; returns the metrics. */
    public Map<String, Object> run(Path base, Path metricsFile, PrintStream out) throws IOException {
        if (output == null || reft == null || data == null) {
            throw new IllegalArgumentException("a training config needs \"data\", \"reft\" and \"output\"");
        }
        TrainingArguments args = training == null ? TrainingArguments.defaults() : training;
        HookedModel m = InterventionConfig.loadModel(model, tokenizer, base);
        Split split = data.load(base);
        ReftClassifier c = ReftClassifier.create(m, reft.toConfig(), args.seed());
        TrainingResult r = c.train(split.train(), split.dev(), args, out);
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("train_examples", split.train().size());
        metrics.put("steps", r.steps());
        metrics.put("train_seconds", r.seconds());
        metrics.put("examples_per_second", r.examplesPerSecond());
        metrics.put("final_loss", r.losses().get(r.losses().size() - 1));
        metrics.put("stopped_early", r.stoppedEarly());
        if (!split.dev().isEmpty()) {
            metrics.put("dev_accuracy", r.bestDevAccuracy());
        }
        if (!split.test().isEmpty()) {
            metrics.put("test_accuracy", c.accuracy(split.test(), 32, args.maxLength()));
        }
        metrics.put("trainable_parameters", c.trainableParameters());
        metrics.put("model_parameters", m.graph().parameterCount());
        ReftCheckpoint.save(base.resolve(output), c, model == null ? "minilm" : model, args, metrics);
        AtomicFiles.write(metricsFile, JSON.writeValueAsBytes(metrics));
        return metrics;
    }

    /** Accuracy of a saved checkpoint on labelled data. */
    public static Map<String, Object> evaluate(Path checkpoint, HookedModel model, List<LabelledText> data) {
        ReftClassifier c = ReftCheckpoint.load(checkpoint, model);
        TrainingArguments args = ReftCheckpoint.trainingArguments(checkpoint);
        int maxLength = args == null ? TrainingArguments.defaults().maxLength() : args.maxLength();
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("examples", data.size());
        metrics.put("accuracy", c.accuracy(data, 32, maxLength));
        return metrics;
    }

    public static String toJson(Map<String, Object> metrics) {
        try {
            return JSON.writeValueAsString(metrics);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
