package dev.jreft.das.train;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.Intervention;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.das.BoundlessRotatedSpaceInterchange;
import dev.jreft.interventions.das.LowRankRotatedSpaceInterchange;
import dev.jreft.interventions.das.RotatedSpaceInterchange;
import dev.jreft.interventions.params.Orthogonal;
import dev.jreft.interventions.params.Parameter;
import dev.jreft.training.AdamW;
import dev.jreft.training.Batches;
import dev.jreft.training.Optimizer;
import dev.jreft.training.OrthogonalAdam;
import dev.jreft.training.ParameterUpdate;
import dev.jreft.training.TemperatureSchedule;
import dev.jreft.training.Trainer;
import dev.jreft.training.TrainingArguments;
import dev.jreft.training.TrainingResult;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.IntStream;

/**
 * Distributed alignment search (Geiger et al. 2023) at one hook: each high-level causal variable is aligned with a
 * linear subspace of the hook's representation, and interchanging that subspace from a source run must make the
 * model give the causal model's counterfactual output. Training minimises the cross-entropy between the intervened
 * model's logits and the counterfactual labels; the rotations move on the orthogonal group ({@link OrthogonalAdam}).
 * IIA (interchange intervention accuracy) is the share of examples whose intervened prediction equals that label.
 *
 * <p>Three ways to parametrise the alignment ({@link Method}), as pyvene's interventions:
 * <ul>
 *   <li>{@code ROTATED}: one rotation R [w, w] shared by all variables, each owning a block of its coordinates
 *       (the DAS paper's setup; pyvene {@code RotatedSpaceIntervention} with a shared link key);</li>
 *   <li>{@code LOW_RANK}: per variable its own R [w, k] with orthonormal columns
 *       ({@code LowRankRotatedSpaceIntervention});</li>
 *   <li>{@code BOUNDLESS}: per variable a rotation [w, w] and a learned boundary, with a temperature annealed from
 *       50 to 0.1 ({@code BoundlessRotatedSpaceIntervention}).</li>
 * </ul>
 *
 * @param <T> the model's input type
 */
public final class DasTrainer<T> {
    /** How variables map to trained parameters. */
    public enum Method { ROTATED, LOW_RANK, BOUNDLESS }

    /** pyvene's boundless DAS anneals the temperature from 50 to 0.1. */
    static final double TEMPERATURE_START = 50;
    static final double TEMPERATURE_END = 0.1;

    private final HookedModel model;
    private final ModelInputs<T> inputs;
    private final String hook;
    private final String logits;
    private final Method method;
    private final Map<String, int[]> subspaces;
    /** {@code LOW_RANK}: each variable's rank k. */
    private final Map<String, Integer> ranks = new LinkedHashMap<>();
    private final long width;
    private final Map<String, INDArray> params = new LinkedHashMap<>();
    private final IntervenableModel intervenable;
    private double temperatureStart = TEMPERATURE_START;
    private double temperatureEnd = TEMPERATURE_END;
    private INDArray temperature = Nd4j.createFromArray((float) TEMPERATURE_END);

    /**
     * @param sizes per causal variable (in order), its subspace size: a block of R's coordinates ({@code ROTATED},
     *              blocks laid out in order, together at most w), the rank k ({@code LOW_RANK}), or unused
     *              ({@code BOUNDLESS}, whose boundary is learned)
     * @param width the hook's width w
     */
    public DasTrainer(HookedModel model, ModelInputs<T> inputs, String hook, String logits, Method method,
                      Map<String, Integer> sizes, int width, long seed) {
        this.model = model;
        this.inputs = inputs;
        this.hook = hook;
        this.logits = logits;
        this.method = method;
        this.intervenable = new IntervenableModel(model);
        this.subspaces = new LinkedHashMap<>();
        this.width = width;
        if (sizes.isEmpty()) {
            throw new IllegalArgumentException("DAS needs at least one causal variable to align");
        }
        Random random = new Random(seed);
        int next = 0;
        for (var e : sizes.entrySet()) {
            int k = e.getValue();
            if (method != Method.BOUNDLESS && (k < 1 || k > width)) {
                throw new IllegalArgumentException("subspace size of '" + e.getKey() + "' must be in [1, " + width
                        + "] (the hook's width); got " + k);
            }
            switch (method) {
                case ROTATED -> {
                    if (next + k > width) {
                        throw new IllegalArgumentException("the variables' subspaces " + sizes + " need " + (next + k)
                                + " coordinates, more than the hook's width " + width);
                    }
                    subspaces.put(e.getKey(), IntStream.range(next, next + k).toArray());
                    next += k;
                }
                case LOW_RANK -> {
                    subspaces.put(e.getKey(), new int[0]);
                    ranks.put(e.getKey(), k);
                }
                case BOUNDLESS -> subspaces.put(e.getKey(), new int[0]);
            }
        }
        // each parameter drawn as its intervention declares it (ROTATED's R is tied: drawn once)
        declarations().forEach((name, p) -> params.put(name, p.init().draw(p.shape(), random)));
    }

    /**
     * A {@code ROTATED} alignment with given subspaces and initial R [w, w] (for hand-built checks and frozen
     * controls).
     */
    public DasTrainer(HookedModel model, ModelInputs<T> inputs, String hook, String logits,
                      Map<String, int[]> subspaces, INDArray rotation) {
        this.model = model;
        this.inputs = inputs;
        this.hook = hook;
        this.logits = logits;
        this.method = Method.ROTATED;
        this.intervenable = new IntervenableModel(model);
        this.subspaces = new LinkedHashMap<>(subspaces);
        this.width = rotation.size(0);
        if (rotation.rank() != 2 || rotation.size(0) != rotation.size(1)) {
            throw new IllegalArgumentException("R must be square [w, w]; got " + java.util.Arrays.toString(
                    rotation.shape()));
        }
        params.put("R", rotation.castTo(DataType.FLOAT).dup());
    }

    /** A random orthogonal R [w, w]. */
    public static INDArray randomRotation(int width, long seed) {
        return randomColumns(width, width, new Random(seed));
    }

    private static INDArray randomColumns(int rows, int cols, Random random) {
        return Orthogonal.randomRows(cols, rows, random).transpose().dup();
    }

    /**
     * The temperature annealing of {@code BOUNDLESS} (linear over the run; pyvene's 50 → 0.1 by default). The mask
     * is a sigmoid over coordinate indices, so the start should be of the order of the hook's width: at 50 a hook
     * of width 4 sees a flat mask of about 0.25 until the last few percent of the run.
     */
    public DasTrainer<T> annealing(double start, double end) {
        new TemperatureSchedule(start, end, 1); // validates
        this.temperatureStart = start;
        this.temperatureEnd = end;
        this.temperature = Nd4j.createFromArray((float) end);
        return this;
    }

    /** The trained parameters by name ({@code R}, or {@code <variable>.R} and {@code <variable>.boundary}). */
    public Map<String, INDArray> parameters() {
        return params;
    }

    /** The tied rotation of a {@code ROTATED} alignment. */
    public INDArray rotation() {
        return params.get("R");
    }

    public Method method() {
        return method;
    }

    /** The variables, in order. */
    public Set<String> variables() {
        return subspaces.keySet();
    }

    /**
     * The boundary of a {@code BOUNDLESS} variable as a number of coordinates ({@code clip(boundary, 1e-3, 1)·w}).
     */
    public double boundaryCoordinates(String variable) {
        INDArray b = params.get(variable + ".boundary");
        INDArray r = params.get(variable + ".R");
        if (b == null) {
            throw new IllegalArgumentException("'" + variable + "' has no learned boundary (method " + method + ")");
        }
        return Math.min(1, Math.max(1e-3, b.getDouble(0))) * r.size(0);
    }

    private Intervention intervention(String variable) {
        return switch (method) {
            case ROTATED -> new RotatedSpaceInterchange(subspaces.get(variable));
            case LOW_RANK -> new LowRankRotatedSpaceInterchange(ranks.get(variable));
            case BOUNDLESS -> new BoundlessRotatedSpaceInterchange();
        };
    }

    /**
     * Every trained parameter by the trainer's name ({@code R} when tied, else {@code <variable>.<name>}) with its
     * intervention's declaration: how it starts and what it must stay.
     */
    private Map<String, Parameter> declarations() {
        Map<String, Parameter> m = new LinkedHashMap<>();
        for (String v : subspaces.keySet()) {
            for (Parameter p : intervention(v).parameters(width)) {
                m.putIfAbsent(method == Method.ROTATED ? p.name() : v + "." + p.name(), p);
            }
        }
        return m;
    }

    private Map<String, INDArray> siteParams(String variable) {
        return switch (method) {
            case ROTATED -> Map.of("R", params.get("R"));
            case LOW_RANK -> Map.of("R", params.get(variable + ".R"));
            case BOUNDLESS -> Map.of("R", params.get(variable + ".R"), "boundary", params.get(variable + ".boundary"),
                    "temperature", temperature);
        };
    }

    private static int[][] positions(List<int[]> each) {
        return each.toArray(new int[0][]);
    }

    /** The sites for a batch: one interchange per aligned variable that the batch intervenes on. */
    private List<String> siteVariables(List<InterchangeExample<T>> examples) {
        List<String> vars = new ArrayList<>();
        for (String v : subspaces.keySet()) {
            if (examples.get(0).sources().containsKey(v)) {
                vars.add(v);
            }
        }
        for (String v : examples.get(0).sources().keySet()) {
            if (!subspaces.containsKey(v)) {
                throw new IllegalArgumentException("the examples intervene on '" + v + "', which is not aligned;"
                        + " aligned variables: " + subspaces.keySet());
            }
        }
        return vars;
    }

    private List<InterventionSite> sites(List<InterchangeExample<T>> examples, List<String> vars) {
        int[][] basePositions = positions(examples.stream().map(x -> inputs.positions(x.base())).toList());
        List<InterventionSite> sites = new ArrayList<>();
        for (String variable : vars) {
            List<T> src = new ArrayList<>();
            for (InterchangeExample<T> x : examples) {
                T s = x.sources().get(variable);
                if (s == null) {
                    throw new IllegalArgumentException("examples in one batch must intervene on the same variables;"
                            + " one lacks a source for '" + variable + "'");
                }
                src.add(s);
            }
            INDArray values = model.runWithCache(inputs.batch(src), hook).get(hook);
            int[][] sourcePositions = positions(src.stream().map(inputs::positions).toList());
            sites.add(InterventionSite.at(hook, intervention(variable)).positions(basePositions)
                    .source(Source.cached(values), sourcePositions).params(siteParams(variable)).build());
        }
        return sites;
    }

    private static <T> INDArray labels(List<InterchangeExample<T>> examples) {
        long[][] l = new long[examples.size()][1];
        for (int i = 0; i < l.length; i++) {
            l[i][0] = examples.get(i).label();
        }
        return Nd4j.createFromArray(l);
    }

    /** Batches intervene on one set of variables each: one batch runs one set of sites. */
    private static <T> Batches<InterchangeExample<T>> batches() {
        return Batches.grouped(x -> new TreeSet<>(x.sources().keySet()), "intervened-variable set");
    }

    /**
     * DAS as an objective of the one {@link Trainer}: the counterfactual cross-entropy of the intervened model, the
     * rotations stepping on the orthogonal group ({@link OrthogonalAdam}) and the boundaries in plain Adam, the
     * temperature annealed over the run, IIA as the dev score.
     */
    private final class Objective implements Trainer.Objective<InterchangeExample<T>> {
        private TemperatureSchedule anneal;

        @Override
        public void start(int totalSteps) {
            anneal = new TemperatureSchedule(temperatureStart, temperatureEnd, totalSteps);
        }

        @Override
        public Optimizer optimizer(TrainingArguments args) {
            return Optimizer.byConstraint(declarations(), new OrthogonalAdam(), new AdamW(0.9, 0.999, 1e-8, 0));
        }

        @Override
        public double step(List<InterchangeExample<T>> examples, Optimizer opt, double lr, double maxGradNorm,
                           int stepIndex) {
            temperature = anneal.tensorAt(stepIndex);
            Batch base = inputs.batch(examples.stream().map(InterchangeExample::base).toList());
            List<String> vars = siteVariables(examples);
            IntervenableModel.Gradients g = intervenable.gradients(base, sites(examples, vars), "das-ce",
                    gr -> LossGraphs.classificationCrossEntropy(gr, logits),
                    Map.of(LossGraphs.LABELS, labels(examples)));
            Map<String, INDArray> grads = new LinkedHashMap<>();
            for (int i = 0; i < vars.size(); i++) {
                for (var e : g.perSite().get(i).entrySet()) {
                    String name = method == Method.ROTATED ? e.getKey() : vars.get(i) + "." + e.getKey();
                    // R is tied across the variables' sites in ROTATED: its gradients add up
                    grads.merge(name, e.getValue().dup(), INDArray::addi);
                }
            }
            ParameterUpdate.apply(declarations(), params, grads, g.loss(), opt, lr, maxGradNorm, stepIndex);
            return g.loss();
        }

        @Override
        public double evaluate(List<InterchangeExample<T>> dev, TrainingArguments args) {
            return iia(dev, args.batchSize());
        }

        @Override
        public Map<String, INDArray> parameters() {
            return params;
        }

        @Override
        public void training(Random random) {
            if (random == null) {
                // evaluation, and what training leaves: the annealed end temperature
                temperature = Nd4j.createFromArray((float) temperatureEnd);
            }
        }
    }

    /**
     * Trains the alignment on {@code train} (batches of one intervened-variable set, shuffled across sets each
     * epoch) with the one {@link Trainer}; with a non-empty {@code dev} keeps the parameters of the best dev IIA.
     * With {@code BOUNDLESS} the temperature is annealed over the run and left at its final value for evaluation.
     */
    public TrainingResult train(List<InterchangeExample<T>> train, List<InterchangeExample<T>> dev,
                                TrainingArguments args, PrintStream out) {
        return Trainer.train(new Objective(), train, dev, args, out, batches());
    }

    /** Trains on {@code train} without a dev set; returns the mean loss of each epoch. */
    public List<Double> train(List<InterchangeExample<T>> train, TrainingArguments args, PrintStream out) {
        return train(train, List.of(), args, out).epochLosses();
    }

    /** Interchange intervention accuracy on {@code examples} (evaluated in batches of {@code batchSize}). */
    public double iia(List<InterchangeExample<T>> examples, int batchSize) {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("IIA needs at least one example");
        }
        int ok = 0;
        Map<Set<String>, List<InterchangeExample<T>>> groups = new LinkedHashMap<>();
        for (InterchangeExample<T> x : examples) {
            groups.computeIfAbsent(new TreeSet<>(x.sources().keySet()), k -> new ArrayList<>()).add(x);
        }
        for (List<InterchangeExample<T>> group : groups.values()) {
            for (int i = 0; i < group.size(); i += batchSize) {
                List<InterchangeExample<T>> chunk = group.subList(i, Math.min(group.size(), i + batchSize));
                Batch base = inputs.batch(chunk.stream().map(InterchangeExample::base).toList());
                INDArray pred = intervenable.run(base, sites(chunk, siteVariables(chunk))).output(logits).argMax(1);
                for (int j = 0; j < chunk.size(); j++) {
                    if (pred.getInt(j) == chunk.get(j).label()) {
                        ok++;
                    }
                }
            }
        }
        return (double) ok / examples.size();
    }
}
