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

    /** One training run. */
    public record Run(String method, long seed, double testAccuracy, double devAccuracy, long trainable,
                      double trainSeconds, double examplesPerSecond) {
    }

    /** One row of the table: a method's runs summarised, with the peak RSS of the process that ran them. */
    public record Row(String method, String label, long trainable, long modelParameters, double meanAccuracy,
                      double sdAccuracy, List<Double> accuracies, double trainSeconds, double examplesPerSecond,
                      long peakRssBytes, double learningRate) {
        public double percentOfModel() {
            return 100.0 * trainable / modelParameters;
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

    /** The learning rates a search tries for a method: its documented rate and a third and three times it. */
    public static List<Double> searchGrid(Method method) {
        return List.of(method.learningRate() / 3, method.learningRate(), method.learningRate() * 3);
    }

    /**
     * A small search on the dev split: {@code method} trained at each rate of {@link #searchGrid} on the split of
     * {@code seed} (the test part is never read); returns the method at the rate with the best dev accuracy (the
     * documented rate on a tie).
     */
    public static Method searchLearningRate(HookedModel model, List<LabelledText> all, Method method, long seed,
                                            TrainingArguments budget, PrintStream out) {
        List<Double> grid = searchGrid(method);
        List<Double> dev = new ArrayList<>();
        for (double lr : grid) {
            Method at = new Method(method.name(), method.label(), method.spec(), lr);
            dev.add(run(model, all, at, List.of(seed), budget, out, false).get(0).devAccuracy());
        }
        double best = bestRate(grid, dev, method.learningRate());
        out.printf(Locale.ROOT, "%s: learning rate %g (dev accuracy %s at %s)%n", method.label(), best, dev, grid);
        return new Method(method.name(), method.label(), method.spec(), best);
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

    /** {@code test}: false for a search run, which reads the dev split only (its test accuracy is NaN). */
    private static List<Run> run(HookedModel model, List<LabelledText> all, Method method, List<Long> seeds,
                                 TrainingArguments budget, PrintStream out, boolean test) {
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
                runs.add(new Run(method.name(), seed, test ? probe.accuracy(rows(features, split.test(), row),
                        labels(split.test())) : Double.NaN, probe.accuracy(rows(features, split.dev(), row),
                        labels(split.dev())), probe.parameters(), seconds, split.train().size() / seconds));
            } else {
                ReftClassifier c = ReftClassifier.create(model, new ReftClassifier.Config(method.spec().apply(model), 2,
                        ClassificationHead.Pooling.MEAN), seed);
                TrainingResult r = c.train(split.train(), split.dev(), args, out);
                runs.add(new Run(method.name(), seed, test ? c.accuracy(split.test(), 32, args.maxLength())
                        : Double.NaN, r.bestDevAccuracy(), c.trainableParameters(), r.seconds(), r.examplesPerSecond()));
            }
            Run last = runs.get(runs.size() - 1);
            if (test) {
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
                method.learningRate());
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
        s.append("| method | trainable params | % of model | test accuracy (mean ± sd, ").append(seeds)
                .append(seeds == 1 ? " seed" : " seeds").append(") | learning rate | train time | examples/s | peak RSS |\n");
        s.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            s.append(String.format(Locale.ROOT, "| %s | %,d | %.3f%% | %.4f ± %.4f | %s | %.1f s | %s | %s |%n",
                    r.label(), r.trainable(), r.percentOfModel(), r.meanAccuracy(), r.sdAccuracy(),
                    new java.math.BigDecimal(r.learningRate()).round(new java.math.MathContext(3)).stripTrailingZeros()
                            .toPlainString(),
                    r.trainSeconds(),
                    Double.isNaN(r.examplesPerSecond()) ? "n/a" : String.format(Locale.ROOT, "%.1f",
                            r.examplesPerSecond()), r.peakRssBytes() < 0 ? "n/a" : String.format(Locale.ROOT,
                            "%.0f MB", r.peakRssBytes() / 1e6)));
        }
        return s.toString();
    }

    /** The table as CSV: one line per method, the seeds' accuracies last. */
    public static String csv(List<Row> rows) {
        StringBuilder s = new StringBuilder("method,label,trainable_parameters,percent_of_model,test_accuracy_mean,"
                + "test_accuracy_sd,learning_rate,train_seconds,examples_per_second,peak_rss_bytes,test_accuracies\n");
        for (Row r : rows) {
            s.append(String.format(Locale.ROOT, "%s,\"%s\",%d,%.5f,%.5f,%.5f,%g,%.2f,%.2f,%d,\"%s\"%n", r.method(),
                    r.label().replace("\"", "\"\""), r.trainable(), r.percentOfModel(), r.meanAccuracy(),
                    r.sdAccuracy(), r.learningRate(), r.trainSeconds(), r.examplesPerSecond(), r.peakRssBytes(),
                    String.join(" ", r.accuracies().stream().map(a -> String.format(Locale.ROOT, "%.4f", a))
                            .toList())));
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
            chart.addSeries(r.label(), new double[] {r.trainable()}, new double[] {r.meanAccuracy()},
                    new double[] {r.sdAccuracy()});
        }
        org.knowm.xchart.BitmapEncoder.saveBitmap(chart, png.toString(), org.knowm.xchart.BitmapEncoder.BitmapFormat.PNG);
    }
}
