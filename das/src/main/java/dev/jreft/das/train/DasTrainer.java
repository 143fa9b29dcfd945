package dev.jreft.das.train;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.das.RotatedSpaceInterchange;
import dev.jreft.interventions.train.AdamW;
import dev.jreft.interventions.train.LinearSchedule;
import dev.jreft.interventions.train.NonFiniteException;
import dev.jreft.interventions.train.Orthogonal;
import dev.jreft.interventions.train.TrainingArguments;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Distributed alignment search (Geiger et al. 2023) on a model whose input is a feature vector ({@code x} [b, 1,
 * in]): one orthogonal R [w, w] over a hook of width w, and per causal variable a subspace of R's coordinates. For an
 * example, each intervened variable's subspace is interchanged from that variable's source run, and R is trained so
 * the intervened model predicts the causal model's counterfactual label (cross-entropy); R is retracted to the
 * orthogonal group after every step. IIA is the share of examples whose intervened prediction equals that label.
 */
public final class DasTrainer {
    private final HookedModel model;
    private final String hook;
    private final String input;
    private final String logits;
    private final Map<String, int[]> subspaces;
    private final INDArray rotation;
    private final IntervenableModel intervenable;

    /**
     * @param subspaces for each causal variable, the rotated coordinates it is aligned with (disjoint)
     */
    public DasTrainer(HookedModel model, String hook, String input, String logits, Map<String, int[]> subspaces,
                      INDArray initialRotation) {
        this.model = model;
        this.hook = hook;
        this.input = input;
        this.logits = logits;
        this.subspaces = new LinkedHashMap<>(subspaces);
        this.rotation = initialRotation.castTo(DataType.FLOAT).dup();
        this.intervenable = new IntervenableModel(model);
        if (rotation.rank() != 2 || rotation.size(0) != rotation.size(1)) {
            throw new IllegalArgumentException("R must be square [w, w]; got " + java.util.Arrays.toString(
                    rotation.shape()));
        }
    }

    /** A random orthogonal R [w, w]. */
    public static INDArray randomRotation(int width, long seed) {
        return Orthogonal.randomRows(width, width, new Random(seed));
    }

    public INDArray rotation() {
        return rotation;
    }

    private Batch batch(List<float[]> rows) {
        int n = rows.size();
        int w = rows.get(0).length;
        float[] flat = new float[n * w];
        for (int i = 0; i < n; i++) {
            System.arraycopy(rows.get(i), 0, flat, i * w, w);
        }
        return new Batch(Map.of(input, Nd4j.create(flat, new long[] {n, 1, w}, 'c')));
    }

    /** The sites for a batch: one rotated-space interchange per intervened variable, all sharing R. */
    private List<InterventionSite> sites(List<InterchangeExample> examples) {
        int[][] pos = new int[examples.size()][];
        for (int i = 0; i < pos.length; i++) {
            pos[i] = new int[] {0};
        }
        List<InterventionSite> sites = new ArrayList<>();
        for (var e : subspaces.entrySet()) {
            String variable = e.getKey();
            if (!examples.get(0).sources().containsKey(variable)) {
                continue;
            }
            List<float[]> src = new ArrayList<>();
            for (InterchangeExample x : examples) {
                float[] s = x.sources().get(variable);
                if (s == null) {
                    throw new IllegalArgumentException("examples in one batch must intervene on the same variables;"
                            + " one lacks a source for '" + variable + "'");
                }
                src.add(s);
            }
            INDArray values = model.runWithCache(batch(src), hook).get(hook);
            sites.add(InterventionSite.at(hook, new RotatedSpaceInterchange(e.getValue())).positions(pos)
                    .source(Source.cached(values), pos).params(Map.of("R", rotation)).build());
        }
        if (sites.isEmpty()) {
            throw new IllegalArgumentException("the examples intervene on none of the aligned variables "
                    + subspaces.keySet());
        }
        return sites;
    }

    private static INDArray labels(List<InterchangeExample> examples) {
        long[][] l = new long[examples.size()][1];
        for (int i = 0; i < l.length; i++) {
            l[i][0] = examples.get(i).label();
        }
        return Nd4j.createFromArray(l);
    }

    /** One step: cross-entropy of the intervened prediction against the counterfactual labels; returns the loss. */
    public double step(List<InterchangeExample> examples, AdamW opt, double lr, int stepIndex) {
        Batch base = batch(examples.stream().map(InterchangeExample::base).toList());
        List<InterventionSite> sites = sites(examples);
        IntervenableModel.Gradients g = intervenable.gradients(base, sites, "das-ce",
                gr -> LossGraphs.classificationCrossEntropy(gr, logits), Map.of(LossGraphs.LABELS, labels(examples)));
        INDArray grad = Nd4j.zeros(DataType.FLOAT, rotation.shape());
        for (Map<String, INDArray> site : g.perSite()) {
            grad.addi(site.get("R")); // R is tied across the variables' sites
        }
        NonFiniteException.check(stepIndex, g.loss(), Map.of("R", grad));
        opt.step(Map.of("R", rotation), Map.of("R", grad), lr);
        Orthogonal.retractColumns(rotation);
        return g.loss();
    }

    /** Trains R; returns the mean loss of each epoch. */
    public List<Double> train(List<InterchangeExample> train, TrainingArguments args, PrintStream out) {
        int steps = train.size() / args.batchSize() * args.epochs();
        LinearSchedule schedule = LinearSchedule.of(args, steps);
        AdamW opt = new AdamW(0.9, 0.999, 1e-8, 0);
        Random random = new Random(args.seed());
        List<Double> losses = new ArrayList<>();
        int step = 0;
        // a batch intervenes on one set of variables: group, then shuffle batches across groups each epoch
        Map<java.util.Set<String>, List<InterchangeExample>> groups = new LinkedHashMap<>();
        for (InterchangeExample x : train) {
            groups.computeIfAbsent(new java.util.TreeSet<>(x.sources().keySet()), k -> new ArrayList<>()).add(x);
        }
        for (int epoch = 0; epoch < args.epochs(); epoch++) {
            List<List<InterchangeExample>> batches = new ArrayList<>();
            for (List<InterchangeExample> group : groups.values()) {
                List<InterchangeExample> order = new ArrayList<>(group);
                Collections.shuffle(order, random);
                for (int i = 0; i + args.batchSize() <= order.size(); i += args.batchSize()) {
                    batches.add(order.subList(i, i + args.batchSize()));
                }
            }
            Collections.shuffle(batches, random);
            double sum = 0;
            for (List<InterchangeExample> batch : batches) {
                sum += step(batch, opt, schedule.at(step), step);
                step++;
            }
            losses.add(sum / batches.size());
            out.printf("das epoch %d: loss %.4f%n", epoch + 1, sum / batches.size());
        }
        return losses;
    }

    /** Interchange intervention accuracy on {@code examples} (evaluated in batches of {@code batchSize}). */
    public double iia(List<InterchangeExample> examples, int batchSize) {
        Map<java.util.Set<String>, List<InterchangeExample>> groups = new LinkedHashMap<>();
        for (InterchangeExample x : examples) {
            groups.computeIfAbsent(new java.util.TreeSet<>(x.sources().keySet()), k -> new ArrayList<>()).add(x);
        }
        int ok = 0;
        for (List<InterchangeExample> group : groups.values()) {
            ok += correct(group, batchSize);
        }
        return (double) ok / examples.size();
    }

    private int correct(List<InterchangeExample> examples, int batchSize) {
        int ok = 0;
        for (int i = 0; i < examples.size(); i += batchSize) {
            List<InterchangeExample> chunk = examples.subList(i, Math.min(examples.size(), i + batchSize));
            Batch base = batch(chunk.stream().map(InterchangeExample::base).toList());
            INDArray out = intervenable.run(base, sites(chunk)).output(logits);
            INDArray pred = out.argMax(1);
            for (int j = 0; j < chunk.size(); j++) {
                if (pred.getInt(j) == chunk.get(j).label()) {
                    ok++;
                }
            }
        }
        return ok;
    }
}
