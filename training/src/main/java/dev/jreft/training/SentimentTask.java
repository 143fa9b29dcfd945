package dev.jreft.training;

import dev.jreft.checkpoints.Checkpoint;
import dev.jreft.checkpoints.CheckpointWriter;
import dev.jreft.hooks.io.AtomicFiles;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.data.LabelledText;
import dev.jreft.training.data.SentimentData;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The main job: LoReFT on the embedded MiniLM for the UCI Sentiment Labelled Sentences, beside a linear probe on
 * the frozen model. Trains, reports test accuracy, trainable parameters and their share of the model, wall time;
 * saves the checkpoint, reloads it and evaluates again.
 */
public final class SentimentTask {
    /** Everything the job measured. */
    public record Report(int train, int dev, int test, double probeTestAccuracy, long probeParameters,
                         double probeSeconds, double reftTestAccuracy, double reftDevAccuracy, long reftParameters,
                         long interventionParameters, long modelParameters, double reftSeconds,
                         double examplesPerSecond, double reloadedTestAccuracy, Path checkpoint) {
    }

    private SentimentTask() {
    }

    public static Report run(HookedModel model, Path dataDir, Path checkpointDir, ReftClassifier.Config config,
                             TrainingArguments args, long splitSeed, PrintStream out) throws IOException {
        AtomicFiles.checkFolder(checkpointDir, "--checkpoint");
        try (CheckpointWriter checkpoint = Checkpoint.prepare(checkpointDir)) { // a bad path fails before training
            return run(model, dataDir, checkpoint, config, args, splitSeed, out);
        }
    }

    private static Report run(HookedModel model, Path dataDir, CheckpointWriter checkpoint, ReftClassifier.Config config,
                              TrainingArguments args, long splitSeed, PrintStream out) throws IOException {
        Path checkpointDir = checkpoint.dir();
        TrainConfig.checkAgainstModel(model, config, args);
        List<LabelledText> all = SentimentData.load(SentimentData.ensure(dataDir, "--data"));
        SentimentData.Split split = SentimentData.split(all, splitSeed, 0.7, 0.15);
        out.printf("data: %d sentences (IMDb, Yelp, Amazon) -> train %d, dev %d, test %d (split seed %d)%n",
                all.size(), split.train().size(), split.dev().size(), split.test().size(), splitSeed);

        long t0 = System.nanoTime();
        INDArray fTrain = LinearProbe.features(model, split.train(), config.pooling(), 32, args.maxLength());
        INDArray fDev = LinearProbe.features(model, split.dev(), config.pooling(), 32, args.maxLength());
        INDArray fTest = LinearProbe.features(model, split.test(), config.pooling(), 32, args.maxLength());
        LinearProbe probe = LinearProbe.train(fTrain, labels(split.train()), fDev, labels(split.dev()),
                config.classes(), 500, 1e-2, config.pooling());
        double probeAcc = probe.accuracy(fTest, labels(split.test()));
        double probeSecs = (System.nanoTime() - t0) / 1e9;
        out.printf("linear probe (head on frozen features): test accuracy %.4f (%.1f s)%n", probeAcc, probeSecs);

        MethodSpec.Reft setup = config.reft();
        out.printf("training %s rank %d at %s, positions %s%s, head on %s pooling%n", setup.intervention(),
                setup.rank(), setup.hooks(), setup.positions(), setup.shareWeights() ? " (shared)" : "",
                config.pooling().name().toLowerCase());
        ReftClassifier reft = ReftClassifier.create(model, config, args.seed());
        TrainingResult r = reft.train(split.train(), split.dev(), args, out);
        double reftAcc = reft.accuracy(split.test(), 32, args.maxLength());
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("test_accuracy", reftAcc);
        metrics.put("dev_accuracy", r.bestDevAccuracy());
        metrics.put("linear_probe_test_accuracy", probeAcc);
        metrics.put("steps", r.steps());
        metrics.put("train_seconds", r.seconds());
        ReftCheckpoint.save(checkpoint, reft, "minilm", args, metrics); // the name --model takes
        ReftClassifier reloaded = ReftCheckpoint.load(checkpointDir, model);
        double reloadedAcc = reloaded.accuracy(split.test(), 32, args.maxLength());
        return new Report(split.train().size(), split.dev().size(), split.test().size(), probeAcc, probe.parameters(),
                probeSecs, reftAcc, r.bestDevAccuracy(), reft.trainableParameters(), reft.interventionParameters(),
                model.graph().parameterCount(), r.seconds(), r.examplesPerSecond(), reloadedAcc, checkpointDir);
    }

    /** The report as the table the README shows. */
    public static void print(Report r, PrintStream out) {
        out.println();
        out.printf("%-34s %14s %18s %12s%n", "method", "test accuracy", "trainable params", "train time");
        out.printf("%-34s %14.4f %10d (%5.3f%%) %10.1f s%n", "linear probe (frozen MiniLM)", r.probeTestAccuracy(),
                r.probeParameters(), 100.0 * r.probeParameters() / r.modelParameters(), r.probeSeconds());
        out.printf("%-34s %14.4f %10d (%5.3f%%) %10.1f s%n", "LoReFT + linear head", r.reftTestAccuracy(),
                r.reftParameters(), 100.0 * r.reftParameters() / r.modelParameters(), r.reftSeconds());
        out.printf("  (interventions alone: %d parameters, %.3f%% of the model's %d)%n", r.interventionParameters(),
                100.0 * r.interventionParameters() / r.modelParameters(), r.modelParameters());
        out.printf("training throughput: %.1f examples/s; best dev accuracy %.4f%n", r.examplesPerSecond(),
                r.reftDevAccuracy());
        out.printf("checkpoint: %s -> reloaded, test accuracy %.4f (%s)%n", r.checkpoint(), r.reloadedTestAccuracy(),
                r.reloadedTestAccuracy() == r.reftTestAccuracy() ? "same" : "DIFFERENT");
    }

    private static int[] labels(List<LabelledText> data) {
        return data.stream().mapToInt(LabelledText::label).toArray();
    }
}
