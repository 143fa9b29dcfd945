package dev.jreft.analysis;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.training.ClassificationHead;
import dev.jreft.training.LinearProbe;
import dev.jreft.training.MethodSpec;
import dev.jreft.training.ReftClassifier;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.TrainingResult;
import dev.jreft.training.data.LabelledText;
import dev.jreft.training.data.SentimentData;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * ReFT beside the PEFT baselines on one task, as the ReFT paper's GLUE table: every method trained with the same
 * budget (epochs, batch size, max length) and its own learning rate, test accuracy over several seeds (each seed its
 * own split of the data, its own init and order), trainable parameters with their share of the model, training time,
 * examples per second and peak RSS.
 */
public final class MethodComparison {
    private MethodComparison() {
    }

    /** One method of the table: its name, label, settings on a model (null: the linear probe) and learning rate. */
    public record Method(String name, String label, Function<HookedModel, MethodSpec> spec, double learningRate) {
    }

    /** One training run; {@code inferenceMs}: milliseconds per test example of the trained model (batches of 32). */
    public record Run(String method, long seed, double testAccuracy, double devAccuracy, long trainable,
                      double trainSeconds, double examplesPerSecond, double inferenceMs) {
    }

    /**
     * One row of the table: a method's runs summarised, with the peak RSS of the process that ran them, on the base
     * model {@code model} (an embedded name) whose ONNX graph takes {@code modelBytes} (-1: not measured).
     */
    public record Row(String method, String label, long trainable, long modelParameters, double meanAccuracy,
                      double sdAccuracy, List<Double> accuracies, double trainSeconds, double examplesPerSecond,
                      long peakRssBytes, double learningRate, String search, String model, long modelBytes,
                      double inferenceMs) {
        public double percentOfModel() {
            return 100.0 * trainable / modelParameters;
        }

        /** This row with the trace of the search that chose its learning rate ({@link Search#trace}). */
        public Row searched(String trace) {
            return new Row(method, label, trainable, modelParameters, meanAccuracy, sdAccuracy, accuracies,
                    trainSeconds, examplesPerSecond, peakRssBytes, learningRate, trace, model, modelBytes,
                    inferenceMs);
        }

        /** This row on the base model {@code name} of {@code bytes} on disk. */
        public Row on(String name, long bytes) {
            return new Row(method, label, trainable, modelParameters, meanAccuracy, sdAccuracy, accuracies,
                    trainSeconds, examplesPerSecond, peakRssBytes, learningRate, search, name, bytes, inferenceMs);
        }
    }

    /** Every method the comparison knows, in the table's order; settings as the README documents them. */
    public static Map<String, Method> methods() {
        Map<String, Method> m = new LinkedHashMap<>();
        List<String> sites = List.of("blocks.1.block_output", "blocks.3.block_output", "blocks.5.block_output");
        m.put("probe", new Method("probe", "linear probe (frozen)", null, 1e-2));
        m.put("full", new Method("full", "full finetuning", x -> new MethodSpec.Weights("full"), 5e-5));
        m.put("bitfit", new Method("bitfit", "BitFit", x -> new MethodSpec.Weights("bitfit"), 4e-3));
        m.put("lora", new Method("lora", "LoRA r=8 (query, value)", x -> new MethodSpec.Lora("lora",
                List.of("query", "value"), 8, 16, 0, false), 4e-3));
        m.put("dora", new Method("dora", "DoRA r=8 (query, value)", x -> new MethodSpec.Lora("dora",
                List.of("query", "value"), 8, 16, 0, false), 4e-3));
        m.put("adapter", new Method("adapter", "adapter m=32 (mlp_output)", x -> new MethodSpec.Adapter(
                everyLayer(x, "mlp_output"), 32), 4e-3));
        m.put("ia3", new Method("ia3", "IA3", x -> new MethodSpec.Ia3(everyLayer(x, "key_output", "value_output",
                "mlp_activation")), 2e-2));
        m.put("prefix", new Method("prefix", "prefix tuning P=10", x -> new MethodSpec.Prompt("prefix_tuning", 10,
                "random", null, 0, false), 1e-2));
        m.put("prompt", new Method("prompt", "prompt tuning P=10", x -> new MethodSpec.Prompt("prompt_tuning", 10,
                "sample_vocab", null, 0), 1e-2));
        m.put("ptuning", new Method("ptuning", "P-tuning P=10 (MLP 128)", x -> new MethodSpec.Prompt("p_tuning",
                10, "random", null, 128), 1e-2));
        m.put("direft", new Method("direft", "DiReFT r=4 (blocks 1/3/5, f1+l1)", x -> new MethodSpec.Reft("direft",
                sites, 4, "f1+l1", false, "linear", 0), 4e-3));
        m.put("loreft", new Method("loreft", "LoReFT r=4 (blocks 1/3/5, f1+l1)", x -> new MethodSpec.Reft("loreft",
                sites, 4, "f1+l1", false, "linear", 0), 4e-3));
        return m;
    }

    /** {@code names} picked from {@link #methods()}, in the given order; an unknown name is a one-line error. */
    public static List<Method> pick(List<String> names, String field) {
        Map<String, Method> all = methods();
        List<Method> out = new ArrayList<>();
        for (String n : names) {
            Method m = all.get(n);
            if (m == null) {
                throw new ConfigException(field, n, String.join(", ", all.keySet()));
            }
            if (out.contains(m)) {
                throw new ConfigException(field, n, "each method once");
            }
            out.add(m);
        }
        return out;
    }

    private static List<String> everyLayer(HookedModel m, String... components) {
        List<String> hooks = new ArrayList<>();
        for (int l = 0; l < m.hooks().config().layers(); l++) {
            for (String c : components) {
                hooks.add("blocks." + l + "." + c);
            }
        }
        return hooks;
    }

    /** The learning rates a search starts from: the method's documented rate and a third and three times it. */
    public static List<Double> searchGrid(Method method) {
        return List.of(method.learningRate() / 3, method.learningRate(), method.learningRate() * 3);
    }

    /** How many times a search steps past the end of its grid (by another factor of 3) while the best rate is there. */
    public static final int SEARCH_EXTENSIONS = 2;

    /**
     * A search's outcome: the method at the chosen rate, the chosen rate's run on the search's seed (the seed's
     * row of the table, so it is not trained twice) and every rate tried with its dev accuracy, ascending.
     */
    public record Search(Method chosen, Run chosenRun, List<Double> rates, List<Double> devAccuracies) {
        /** "rate: dev accuracy" for every rate tried, as the table's notes print them. */
        public String trace() {
            List<String> parts = new ArrayList<>();
            for (int i = 0; i < rates.size(); i++) {
                parts.add(String.format(Locale.ROOT, "%s: %.4f", plain(rates.get(i)), devAccuracies.get(i)));
            }
            return String.join(", ", parts);
        }
    }

    /**
     * A small search on the dev split of {@code seed}: {@code method} trained at each rate of {@link #searchGrid};
     * while the best dev accuracy sits at an end of the rates tried, one more rate beyond it (a factor of 3), at
     * most {@link #SEARCH_EXTENSIONS} times. The choice reads dev accuracies only (the documented rate wins a tie);
     * each run's test accuracy is measured too, because the chosen run becomes the seed's row of the table.
     */
    public static Search searchLearningRate(HookedModel model, List<LabelledText> all, Method method, long seed,
                                            TrainingArguments budget, PrintStream out) {
        return search(method, seed, lr -> run(model, all, new Method(method.name(), method.label(), method.spec(),
                lr), List.of(seed), budget, out, false).get(0), out);
    }

    /** {@link #searchLearningRate} over any {@code train}: a rate to its run on {@code seed}. */
    static Search search(Method method, long seed, Function<Double, Run> train, PrintStream out) {
        List<Double> rates = new ArrayList<>();
        List<Run> runs = new ArrayList<>();
        for (double lr : searchGrid(method)) {
            rates.add(lr);
            runs.add(train.apply(lr));
        }
        for (int step = 0; step < SEARCH_EXTENSIONS; step++) {
            int best = rates.indexOf(bestRate(rates, devAccuracies(runs), method.learningRate()));
            if (best == 0) {
                rates.add(0, rates.get(0) / 3);
                runs.add(0, train.apply(rates.get(0)));
            } else if (best == rates.size() - 1) {
                rates.add(rates.get(best) * 3);
                runs.add(train.apply(rates.get(best + 1)));
            } else {
                break;
            }
        }
        List<Double> dev = devAccuracies(runs);
        int best = rates.indexOf(bestRate(rates, dev, method.learningRate()));
        Search s = new Search(new Method(method.name(), method.label(), method.spec(), rates.get(best)),
                runs.get(best), rates, dev);
        out.printf(Locale.ROOT, "%s: learning rate %s chosen on seed %d's dev split (%s)%n", method.label(),
                plain(rates.get(best)), seed, s.trace());
        return s;
    }

    private static List<Double> devAccuracies(List<Run> runs) {
        return runs.stream().map(Run::devAccuracy).toList();
    }

    /** A rate with three significant digits and no exponent: 0.0133, 0.004. */
    static String plain(double rate) {
        return new java.math.BigDecimal(rate).round(new java.math.MathContext(3)).stripTrailingZeros().toPlainString();
    }

    /** The rate with the highest dev accuracy; {@code preferred} among equals. */
    static double bestRate(List<Double> rates, List<Double> dev, double preferred) {
        double best = rates.get(0);
        double bestDev = -1;
        for (int i = 0; i < rates.size(); i++) {
            boolean better = dev.get(i) > bestDev || dev.get(i) == bestDev && rates.get(i) == preferred;
            if (better) {
                best = rates.get(i);
                bestDev = dev.get(i);
            }
        }
        return best;
    }

    /**
     * Trains {@code method} once per seed: seed s splits {@code all} 70/15/15 with s, draws the init and the order
     * with s. Progress goes to {@code out}.
     */
    public static List<Run> run(HookedModel model, List<LabelledText> all, Method method, List<Long> seeds,
                                TrainingArguments budget, PrintStream out) {
        return run(model, all, method, seeds, budget, out, true);
    }

    /** {@code report}: false for a search run, whose progress shows its dev accuracy only. */
    private static List<Run> run(HookedModel model, List<LabelledText> all, Method method, List<Long> seeds,
                                 TrainingArguments budget, PrintStream out, boolean report) {
        List<Run> runs = new ArrayList<>();
        INDArray features = null;
        double featureSeconds = 0;
        Map<LabelledText, Integer> row = new IdentityHashMap<>(); // each example's row of the probe's features
        for (int i = 0; i < all.size(); i++) {
            row.put(all.get(i), i);
        }
        for (long seed : seeds) {
            SentimentData.Split split = SentimentData.split(all, seed, 0.7, 0.15);
            TrainingArguments args = new TrainingArguments(budget.epochs(), budget.batchSize(), method.learningRate(),
                    budget.weightDecay(), budget.warmupRatio(), budget.maxGradNorm(), seed, 0, budget.patience(),
                    budget.optimizer(), budget.maxLength());
            out.printf(Locale.ROOT, "%s, seed %d: train %d, dev %d, test %d, learning rate %g%n", method.label(), seed,
                    split.train().size(), split.dev().size(), split.test().size(), method.learningRate());
            if (method.spec() == null) {
                long t0 = System.nanoTime();
                if (features == null) { // the frozen model's features do not depend on the split: computed once,
                    // and their time counted in every seed's, as each seed's training would pay it
                    features = LinearProbe.features(model, all, ClassificationHead.Pooling.MEAN, 32, args.maxLength());
                    featureSeconds = (System.nanoTime() - t0) / 1e9;
                    t0 = System.nanoTime();
                }
                LinearProbe probe = LinearProbe.train(rows(features, split.train(), row), labels(split.train()),
                        rows(features, split.dev(), row), labels(split.dev()), 2, 500, method.learningRate(),
                        ClassificationHead.Pooling.MEAN);
                double seconds = featureSeconds + (System.nanoTime() - t0) / 1e9;
                runs.add(new Run(method.name(), seed, probe.accuracy(rows(features, split.test(), row),
                        labels(split.test())), probe.accuracy(rows(features, split.dev(), row),
                        labels(split.dev())), probe.parameters(), seconds, split.train().size() / seconds,
                        1e3 * featureSeconds / all.size())); // the frozen model's forward; the head is negligible
            } else {
                ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config(method.spec().apply(model), 2,
                        ClassificationHead.Pooling.MEAN), seed);
                TrainingResult r = c.train(split.train(), split.dev(), args, out);
                long t0 = System.nanoTime();
                double test = c.accuracy(split.test(), 32, args.maxLength());
                double inferenceMs = (System.nanoTime() - t0) / 1e6 / split.test().size();
                runs.add(new Run(method.name(), seed, test, r.bestDevAccuracy(), c.trainableParameters(), r.seconds(),
                        r.examplesPerSecond(), inferenceMs));
            }
            Run last = runs.get(runs.size() - 1);
            if (report) {
                out.printf(Locale.ROOT, "%s, seed %d: test accuracy %.4f (dev %.4f), %.1f s%n", method.label(), seed,
                        last.testAccuracy(), last.devAccuracy(), last.trainSeconds());
            } else {
                out.printf(Locale.ROOT, "%s, seed %d, learning rate %g: dev accuracy %.4f, %.1f s%n", method.label(),
                        seed, method.learningRate(), last.devAccuracy(), last.trainSeconds());
            }
        }
        return runs;
    }

    private static INDArray rows(INDArray features, List<LabelledText> part, Map<LabelledText, Integer> row) {
        long[] idx = part.stream().mapToLong(t -> row.get(t)).toArray();
        return features.get(NDArrayIndex.indices(idx), NDArrayIndex.all()).dup('c');
    }

    private static int[] labels(List<LabelledText> data) {
        return data.stream().mapToInt(LabelledText::label).toArray();
    }

    /** A method's runs as a table row; {@code peakRssBytes} of the process that ran them. */
    public static Row summarise(Method method, List<Run> runs, long modelParameters, long peakRssBytes) {
        List<Double> acc = runs.stream().map(Run::testAccuracy).toList();
        double mean = acc.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
        double sd = acc.size() < 2 ? 0 : Math.sqrt(acc.stream().mapToDouble(a -> (a - mean) * (a - mean)).sum()
                / (acc.size() - 1));
        return new Row(method.name(), method.label(), runs.get(0).trainable(), modelParameters, mean, sd, acc,
                runs.stream().mapToDouble(Run::trainSeconds).average().orElse(Double.NaN),
                runs.stream().mapToDouble(Run::examplesPerSecond).average().orElse(Double.NaN), peakRssBytes,
                method.learningRate(), "", "minilm", -1,
                runs.stream().mapToDouble(Run::inferenceMs).average().orElse(Double.NaN));
    }

    /** This process's peak resident set size so far ({@code VmHWM}), or -1 where the system does not say. */
    public static long peakRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** The table as markdown, one row per method (accuracy mean ± sd over the seeds). */
    public static String markdown(List<Row> rows, int seeds) {
        StringBuilder s = new StringBuilder();
        s.append("| method | base (size on disk) | trainable params | % of model | test accuracy (mean ± sd, ")
                .append(seeds).append(seeds == 1 ? " seed" : " seeds").append(") | learning rate | train time |"
                        + " examples/s | inference | peak RSS |\n");
        s.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            s.append(String.format(Locale.ROOT, "| %s | %s | %,d | %.3f%% | %.4f ± %.4f | %s | %.1f s | %s | %s | %s |%n",
                    r.label(), base(r), r.trainable(), r.percentOfModel(), r.meanAccuracy(), r.sdAccuracy(),
                    plain(r.learningRate()),
                    r.trainSeconds(),
                    Double.isNaN(r.examplesPerSecond()) ? "n/a" : String.format(Locale.ROOT, "%.1f",
                            r.examplesPerSecond()),
                    Double.isNaN(r.inferenceMs()) ? "n/a" : String.format(Locale.ROOT, "%.2f ms", r.inferenceMs()),
                    r.peakRssBytes() < 0 ? "n/a" : String.format(Locale.ROOT, "%.0f MB", r.peakRssBytes() / 1e6)));
        }
        s.append("\n(inference: milliseconds per test example, batches of 32, after training)\n");
        if (rows.stream().anyMatch(r -> r.search() != null && !r.search().isEmpty())) {
            s.append("\nLearning rates tried on the first seed's dev split (rate: dev accuracy; the best is the"
                    + " table's):\n\n");
            for (Row r : rows) {
                if (r.search() != null && !r.search().isEmpty()) {
                    s.append("- ").append(r.label()).append(": ").append(r.search()).append('\n');
                }
            }
        }
        return s.toString();
    }

    private static String base(Row r) {
        String name = r.model() == null ? "minilm" : r.model();
        return r.modelBytes() < 0 ? name : String.format(Locale.ROOT, "%s (%.1f MB)", name, r.modelBytes() / 1e6);
    }

    /** The table as CSV: one line per method, the seeds' accuracies last. */
    public static String csv(List<Row> rows) {
        StringBuilder s = new StringBuilder("method,label,trainable_parameters,percent_of_model,test_accuracy_mean,"
                + "test_accuracy_sd,learning_rate,train_seconds,examples_per_second,peak_rss_bytes,test_accuracies,"
                + "learning_rate_search,base_model,base_model_bytes,inference_ms_per_example\n");
        for (Row r : rows) {
            s.append(String.format(Locale.ROOT, "%s,\"%s\",%d,%.5f,%.5f,%.5f,%g,%.2f,%.2f,%d,\"%s\",\"%s\",%s,%d,%.3f%n",
                    r.method(), r.label().replace("\"", "\"\""), r.trainable(), r.percentOfModel(), r.meanAccuracy(),
                    r.sdAccuracy(), r.learningRate(), r.trainSeconds(), r.examplesPerSecond(), r.peakRssBytes(),
                    String.join(" ", r.accuracies().stream().map(a -> String.format(Locale.ROOT, "%.4f", a))
                            .toList()), r.search() == null ? "" : r.search(), r.model() == null ? "minilm" : r.model(),
                    r.modelBytes(), r.inferenceMs()));
        }
        return s.toString();
    }

    /** Writes accuracy against trainable parameters (log scale), one marker per method with its sd, as a PNG. */
    public static void plot(List<Row> rows, Path png, String title) throws IOException {
        System.setProperty("java.awt.headless", "true"); // drawn off screen, also where no display exists
        var chart = new org.knowm.xchart.XYChartBuilder().width(900).height(560).title(title)
                .xAxisTitle("trainable parameters (log scale)").yAxisTitle("test accuracy").build();
        chart.getStyler().setXAxisLogarithmic(true);
        chart.getStyler().setDefaultSeriesRenderStyle(org.knowm.xchart.XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setMarkerSize(10);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
        for (Row r : rows) {
            String base = r.model() == null || r.model().equals("minilm") ? "" : " on " + r.model();
            chart.addSeries(r.label() + base, new double[] {r.trainable()}, new double[] {r.meanAccuracy()},
                    new double[] {r.sdAccuracy()});
        }
        org.knowm.xchart.BitmapEncoder.saveBitmap(chart, png.toString(), org.knowm.xchart.BitmapEncoder.BitmapFormat.PNG);
    }
}
