package dev.jreft.das;

import dev.jreft.das.HierarchicalEqualityExperiment.Settings;
import dev.jreft.das.causal.CausalModel;
import dev.jreft.das.causal.HierarchicalEquality;
import dev.jreft.das.mlp.Mlp;
import dev.jreft.das.train.DasTrainer;
import dev.jreft.das.train.InterchangeExample;
import dev.jreft.das.train.ModelInputs;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.hooks.runtime.OrtRuntime;
import dev.jreft.training.TrainingArguments;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.IntStream;

/**
 * A DAS sweep over the hidden layers of the MLP that {@link HierarchicalEqualityExperiment#run} trained and saved,
 * and over subspace sizes per variable (WX and YZ each get {@code size} coordinates). The interchange data, the
 * training arguments and the initial rotation are the experiment's own (same seeds), so the cell at
 * {@code tensor:hidden.0} with size {@code settings.subspace} repeats the experiment's DAS run.
 */
public final class HierarchicalEqualitySweep {
    /** {@link HierarchicalEqualityExperiment#run} builds its MLP with three hidden layers of {@code hidden} units. */
    public static final int HIDDEN_LAYERS = 3;

    private HierarchicalEqualitySweep() {
    }

    /** The hooks a sweep can use: every hidden layer of the experiment's MLP, {@code settings.hidden} wide. */
    public static List<DasSweep.Hook> hooks(Settings s) {
        return IntStream.range(0, HIDDEN_LAYERS).mapToObj(k -> new DasSweep.Hook("tensor:hidden." + k, s.hidden()))
                .toList();
    }

    /** The hooks named in {@code names} (all hidden layers when empty); an unknown name lists the valid ones. */
    public static List<DasSweep.Hook> hooks(Settings s, List<String> names) {
        List<DasSweep.Hook> all = hooks(s);
        if (names == null || names.isEmpty()) {
            return all;
        }
        List<DasSweep.Hook> chosen = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            chosen.add(all.stream().filter(h -> h.name().equals(n)).findFirst().orElseThrow(() ->
                    new ConfigException("hooks[" + chosen.size() + "]", n, String.join(", ", all.stream()
                            .map(DasSweep.Hook::name).toList()) + " (the hidden layers of the hierarchical-equality"
                            + " MLP)")));
        }
        return chosen;
    }

    /** Checks hooks, sizes and methods without a model, before the MLP is trained. */
    public static void check(Settings s, List<String> hooks, List<Integer> sizes, List<DasTrainer.Method> methods) {
        DasSweep.check(null, hooks(s, hooks), 2, sizes, methods);
    }

    /**
     * Runs the sweep on the saved MLP {@code model} ({@link HierarchicalEqualityExperiment.Report#model()}).
     *
     * @param hooks hook names (empty: all hidden layers)
     */
    public static DasSweep.Table run(Settings s, Path model, List<String> hooks, List<Integer> sizes,
                                     List<DasTrainer.Method> methods, PrintStream progress) {
        check(s, hooks, sizes, methods);
        List<InterchangeExample<float[]>> train = HierarchicalEqualityExperiment.trainInterchanges(s);
        List<InterchangeExample<float[]>> test = new ArrayList<>();
        test.addAll(HierarchicalEqualityExperiment.testInterchanges(s, List.of(HierarchicalEquality.WX)));
        test.addAll(HierarchicalEqualityExperiment.testInterchanges(s, List.of(HierarchicalEquality.YZ)));
        test.addAll(HierarchicalEqualityExperiment.testInterchanges(s, List.of(HierarchicalEquality.WX,
                HierarchicalEquality.YZ)));
        HookedModel mlp = new HookedModel(OnnxGraph.load(model), null, OrtRuntime.shared());
        TrainingArguments args = HierarchicalEqualityExperiment.dasArguments(s);
        return new DasSweep<>(mlp, Mlp.LOGITS, train, test).run(hooks(s, hooks),
                Map.of("0", ModelInputs.features(Mlp.INPUT)), sizes, methods, args, s.seed() + 30, progress);
    }
}
