package dev.jreft.cli;

import dev.jreft.analysis.ActivationPatching;
import dev.jreft.analysis.SweepConfig;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "sweep", description = "Activation and / or attribution patching over hooks × positions (or × heads)"
        + " of a base and a source text: writes sweep.csv and a heatmap per grid (PNG and SVG), prints their"
        + " correlation.")
final class SweepCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, description = "the sweep: base, source, hooks or components and"
            + " layers, patching (activation | attribution | both), metric, across (positions | heads)")
    Path config;

    @Option(names = "--out", defaultValue = "runs/sweep", description = "output folder (default: ${DEFAULT-VALUE})")
    Path out;

    @Mixin
    ModelOptions modelOptions;

    @Override
    public Integer call() throws Exception {
        SweepConfig c = ConfigJson.read(config, SweepConfig.class);
        try (OutputFolder folder = OutputFolder.prepare(out, "sweep")) { // checked before any run
            HookedModel model = modelOptions.load();
            var tokenizer = model.tokenizer().orElseThrow(() -> new IllegalArgumentException("--tokenizer: found"
                    + " none for " + modelOptions.model + "; valid: the model's tokenizer.json (the sweep reads texts)"));
            List<String> hooks = c.hooksOf(model);
            Batch base = model.tokenize(List.of(c.base()));
            Batch source = model.tokenize(List.of(c.source()));
            List<String> tokens = tokenizer.tokens(c.base());
            ActivationPatching.Metric metric = c.metricOf(model, base, source);
            String which = c.patchingOrBoth();
            ActivationPatching.Grid act = null;
            ActivationPatching.Grid attr = null;
            Path staging = folder.staging();
            if (!which.equals("attribution")) {
                long t0 = System.nanoTime();
                act = c.byHead() ? ActivationPatching.activationByHead(model, base, source, hooks, metric)
                        : ActivationPatching.activation(model, base, source, hooks, metric);
                System.out.printf(Locale.ROOT, "activation patching: %d hooks × %d %s, %.1f s, %d graphs"
                        + " compiled%n", hooks.size(), act.positions(), c.byHead() ? "heads" : "positions",
                        (System.nanoTime() - t0) / 1e9, act.graphsCompiled());
            }
            if (!which.equals("activation")) {
                long t0 = System.nanoTime();
                attr = c.byHead() ? ActivationPatching.attributionByHead(model, base, source, hooks, metric)
                        : ActivationPatching.attribution(model, base, source, hooks, metric);
                System.out.printf(Locale.ROOT, "attribution patching: the same grid from one forward and one"
                        + " backward, %.1f s%n", (System.nanoTime() - t0) / 1e9);
            }
            ActivationPatching.Grid any = act != null ? act : attr;
            System.out.printf(Locale.ROOT, "metric %s: base %.5f, source %.5f (cells are shares of that distance)%n",
                    c.metric() == null ? "embedding_direction" : c.metric(), any.baseMetric(), any.sourceMetric());
            if (act != null && attr != null) {
                System.out.printf(Locale.ROOT, "correlation of attribution with activation patching: %.4f%n",
                        ActivationPatching.correlation(act, attr));
            }
            c.write(staging, hooks, act, attr, tokens);
            List<Path> written = folder.commit();
            List<String> names = new ArrayList<>();
            written.forEach(p -> names.add(p.getFileName().toString()));
            System.out.println("wrote " + out + ": " + String.join(", ", names));
        }
        return 0;
    }
}
