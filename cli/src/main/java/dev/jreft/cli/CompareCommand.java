package dev.jreft.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jreft.analysis.MethodComparison;
import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.data.LabelledText;
import dev.jreft.training.data.SentimentData;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "compare", description = "ReFT beside the PEFT baselines on MiniLM sentiment: every method with the"
        + " same budget over several seeds (each its own split); writes the table as CSV and markdown and a PNG of"
        + " accuracy against trainable parameters.")
final class CompareCommand implements Callable<Integer> {
    @Option(names = "--methods", split = ",", defaultValue = "probe,full,bitfit,lora,dora,adapter,ia3,prefix,prompt,"
            + "ptuning,direft,loreft", description = "methods, in the table's order (default: ${DEFAULT-VALUE})")
    List<String> methods;

    @Option(names = "--models", split = ",", defaultValue = "minilm", description = "embedded base models, each"
            + " method trained on each: minilm, minilm-q (the int8 export) (default: ${DEFAULT-VALUE})")
    List<String> models;

    @Option(names = "--seeds", defaultValue = "5", description = "seeds 42, 43, ... (default: ${DEFAULT-VALUE})")
    int seeds;

    @Option(names = "--epochs", defaultValue = "1", description = "epochs of every method (default: ${DEFAULT-VALUE})")
    int epochs;

    @Option(names = "--batch-size", defaultValue = "32", description = "batch size (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--max-length", defaultValue = "48", description = "tokens per sentence at most (default:"
            + " ${DEFAULT-VALUE})")
    int maxLength;

    @Option(names = "--data", defaultValue = "data/sentiment", description = "where the data set is (or is fetched"
            + " to)")
    Path data;

    @Option(names = "--out", defaultValue = "runs/compare", description = "folder for comparison.csv, comparison.md"
            + " and comparison.png (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--lr-search", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "pick each method's learning rate on the first seed's dev split: a third of, once and three"
            + " times its documented rate, stepping on by 3 while the best is at an end (at most twice); the chosen"
            + " run is that seed's row. --no-lr-search trains at the documented rates (default: search)")
    boolean lrSearch;

    @Option(names = "--worker-rows", hidden = true, description = "internal: run --methods here and write their rows")
    Path workerRows;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    @Override
    public Integer call() throws Exception {
        List<MethodComparison.Method> picked = MethodComparison.pick(methods, "--methods");
        for (String m : models) {
            if (!HookedModel.isEmbedded(m)) {
                throw new dev.jreft.hooks.io.ConfigException("--models", m, String.join(", ",
                        new java.util.TreeSet<>(HookedModel.EMBEDDED.keySet())) + " (embedded models, comma separated)");
            }
        }
        Check.between("--seeds", seeds, 1, 100);
        Check.between("--epochs", epochs, 1, 10_000);
        Check.between("--batch-size", batchSize, 1, 1 << 16);
        Check.atLeast("--max-length", maxLength, 2);
        TrainingArguments d = TrainingArguments.defaults();
        TrainingArguments budget = new TrainingArguments(epochs, batchSize, d.learningRate(), d.weightDecay(),
                d.warmupRatio(), d.maxGradNorm(), 42, 0, d.patience(), d.optimizer(), maxLength);
        List<Long> seedList = new ArrayList<>();
        for (int i = 0; i < seeds; i++) {
            seedList.add(42L + i);
        }
        if (workerRows != null) {
            return work(picked, seedList, budget);
        }
        try (OutputFolder folder = OutputFolder.prepare(out, "compare")) { // checked before any training
            SentimentData.ensure(data, "--data");
            List<MethodComparison.Row> rows = new ArrayList<>();
            long t0 = System.nanoTime();
            for (MethodComparison.Method m : picked) {
                for (String base : models) {
                    rows.add(inChild(m, base, folder.staging()));
                    System.out.println();
                    System.out.print(MethodComparison.markdown(rows, seeds));
                    System.out.println();
                }
            }
            Path staging = folder.staging();
            Files.writeString(staging.resolve("comparison.csv"), MethodComparison.csv(rows));
            Files.writeString(staging.resolve("comparison.md"), MethodComparison.markdown(rows, seeds));
            MethodComparison.plot(rows, staging.resolve("comparison.png"), String.format(Locale.ROOT,
                    "MiniLM sentiment, %d epoch%s, %d seed%s", epochs, epochs == 1 ? "" : "s", seeds,
                    seeds == 1 ? "" : "s"));
            folder.commit();
            System.out.printf(Locale.ROOT, "wrote %s/comparison.{csv,md,png}; wall time %.1f s%n", out,
                    (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    /** Runs one method on one base model in a fresh JVM, so its peak RSS is its own; returns its row. */
    private MethodComparison.Row inChild(MethodComparison.Method m, String base, Path staging) throws Exception {
        // removed before the folder is committed
        Path rowsFile = staging.resolve("worker-" + m.name() + "-" + base + ".json");
        try {
            List<String> cmd = new ArrayList<>();
            cmd.add(ProcessHandle.current().info().command().orElse("java"));
            cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Jreft.class.getName(), "compare",
                    "--methods", m.name(), "--models", base, "--seeds", Integer.toString(seeds), "--epochs", Integer.toString(epochs),
                    "--batch-size", Integer.toString(batchSize), "--max-length", Integer.toString(maxLength),
                    "--data", data.toString(), "--worker-rows", rowsFile.toString()));
            cmd.add(lrSearch ? "--lr-search" : "--no-lr-search");
            int code = new ProcessBuilder(cmd).inheritIO().start().waitFor();
            if (code != 0) {
                throw new IllegalStateException("the run of " + m.name() + " failed (exit code " + code + ")");
            }
            return JSON.readValue(rowsFile.toFile(), MethodComparison.Row[].class)[0];
        } finally {
            Files.deleteIfExists(rowsFile);
        }
    }

    private int work(List<MethodComparison.Method> picked, List<Long> seedList, TrainingArguments budget)
            throws Exception {
        String base = models.get(0);
        HookedModel model = HookedModel.embedded(base);
        long bytes = model.graph().toProto().getSerializedSize(); // the .onnx file's size
        List<LabelledText> all = SentimentData.load(SentimentData.ensure(data, "--data"));
        List<MethodComparison.Row> rows = new ArrayList<>();
        for (MethodComparison.Method m : picked) {
            if (!lrSearch) {
                rows.add(MethodComparison.summarise(m, MethodComparison.run(model, all, m, seedList, budget,
                        System.out), model.graph().parameterCount(), MethodComparison.peakRssBytes()).on(base, bytes));
                continue;
            }
            MethodComparison.Search search = MethodComparison.searchLearningRate(model, all, m, seedList.get(0),
                    budget, System.out);
            List<MethodComparison.Run> runs = new ArrayList<>(List.of(search.chosenRun()));
            runs.addAll(MethodComparison.run(model, all, search.chosen(), seedList.subList(1, seedList.size()),
                    budget, System.out));
            rows.add(MethodComparison.summarise(search.chosen(), runs, model.graph().parameterCount(),
                    MethodComparison.peakRssBytes()).searched(search.trace()).on(base, bytes));
        }
        JSON.writeValue(workerRows.toFile(), rows);
        return 0;
    }
}
