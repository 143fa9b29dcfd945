package dev.jreft.bench;

import dev.jreft.analysis.ActivationPatching;
import dev.jreft.hooks.discovery.HookMap;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * A full patching sweep on the embedded MiniLM, CPU: every layer × every component with a position axis × every
 * position, for 8 sentence pairs that differ in one word. Activation patching's wall time against the plain
 * forwards it needs (one per cell, plus the base and the source), and the graphs it compiles; attribution patching
 * on the same grid against one plain forward plus one backward of the base, warm (the first pair builds the backward
 * graph, reported apart).
 *
 * <p>Run: {@code mvn -B -q -DskipTests install && java -cp bench/target/jreft-bench.jar dev.jreft.bench.PatchingBenchmark}
 */
public final class PatchingBenchmark {
    private PatchingBenchmark() {
    }

    static final String[][] PAIRS = {
        {"The movie was wonderful.", "The movie was terrible."},
        {"The food was delicious.", "The food was disgusting."},
        {"The service was excellent.", "The service was awful."},
        {"The hotel was lovely.", "The hotel was dreadful."},
        {"The book was brilliant.", "The book was boring."},
        {"The phone works great.", "The phone works poorly."},
        {"I loved the ending.", "I hated the ending."},
        {"The staff were friendly.", "The staff were rude."},
    };

    public static void main(String[] args) {
        HookedModel model = HookedModel.minilm();
        List<String> hooks = new ArrayList<>();
        for (int l = 0; l < model.hooks().config().layers(); l++) {
            for (String c : HookMap.COMPONENTS) {
                String h = "blocks." + l + "." + c;
                if (model.hook(h).layout().positional()) {
                    hooks.add(h);
                }
            }
        }
        System.out.printf(Locale.ROOT, "MiniLM, %d hooks (%d layers × %d components with a position axis), %d pairs%n",
                hooks.size(), model.hooks().config().layers(), hooks.size() / model.hooks().config().layers(),
                PAIRS.length);
        double actSeconds = 0;
        double forwardSeconds = 0;
        double attrWarmSeconds = 0;
        double forwardBackwardSeconds = 0;
        double attrFirstSeconds = 0;
        long cells = 0;
        int graphs = 0;
        double[] correlations = new double[PAIRS.length];
        for (int i = 0; i < PAIRS.length; i++) {
            Batch base = model.tokenize(List.of(PAIRS[i][0]));
            Batch source = model.tokenize(List.of(PAIRS[i][1]));
            if (base.seqLen() != source.seqLen()) {
                throw new IllegalStateException("pair " + i + " has different token lengths");
            }
            var metric = ActivationPatching.Metric.embeddingDirection(model, base, source);
            long t0 = System.nanoTime();
            ActivationPatching.Grid act = ActivationPatching.activation(model, base, source, hooks, metric);
            actSeconds += (System.nanoTime() - t0) / 1e9;
            graphs += act.graphsCompiled();
            long n = (long) hooks.size() * act.positions();
            cells += n;
            forwardSeconds += (n + 2) * medianForward(model, base);
            t0 = System.nanoTime();
            ActivationPatching.Grid attr = ActivationPatching.attribution(model, base, source, hooks, metric);
            double s = (System.nanoTime() - t0) / 1e9;
            if (i == 0) {
                attrFirstSeconds = s;
            } else {
                attrWarmSeconds += s;
                forwardBackwardSeconds += medianGradient(model, base, hooks, metric);
            }
            correlations[i] = ActivationPatching.correlation(act, attr);
        }
        System.out.printf(Locale.ROOT, "activation patching: %d cells in %.1f s; ÷ the %d plain forwards it needs:"
                + " %.2f ×; %d graphs compiled (%.1f per pair)%n", cells, actSeconds, cells + 2L * PAIRS.length,
                actSeconds / forwardSeconds, graphs, graphs / (double) PAIRS.length);
        System.out.printf(Locale.ROOT, "attribution patching: %.2f s per pair warm, ÷ one forward + one backward:"
                + " %.2f ×; the first pair (building the backward graph) %.1f s%n",
                attrWarmSeconds / (PAIRS.length - 1), attrWarmSeconds / forwardBackwardSeconds, attrFirstSeconds);
        System.out.printf(Locale.ROOT, "correlation of attribution with activation patching per pair: %s (mean"
                + " %.3f)%n", Arrays.toString(Arrays.stream(correlations).map(r -> Math.round(r * 1000) / 1000.0)
                .toArray()), Arrays.stream(correlations).average().orElse(Double.NaN));
    }

    /** Median seconds of one plain forward of {@code batch} (warm). */
    static double medianForward(HookedModel model, Batch batch) {
        double[] t = new double[9];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            model.run(batch);
            t[i] = (System.nanoTime() - t0) / 1e9;
        }
        Arrays.sort(t);
        return t[t.length / 2];
    }

    /**
     * Median seconds of the gradient run attribution patching makes: one graph computing the forward and the
     * backward (warm: its graph is built already).
     */
    static double medianGradient(HookedModel model, Batch base, List<String> hooks, ActivationPatching.Metric metric) {
        double[] t = new double[5];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            dev.jreft.hooks.autodiff.HookGradients.compute(model, base, g -> dev.jreft.hooks.autodiff.LossGraphs
                    .maskedProbeSum(g, metric.output(), metric.probe().length()), java.util.Map.of(
                    dev.jreft.hooks.autodiff.LossGraphs.PROBE, metric.probe(), dev.jreft.hooks.autodiff.LossGraphs.MASK,
                    metric.mask()), hooks);
            t[i] = (System.nanoTime() - t0) / 1e9;
        }
        Arrays.sort(t);
        return t[t.length / 2];
    }
}
