package dev.jreft.analysis;

import dev.jreft.hooks.autodiff.GraphGradients;
import dev.jreft.hooks.autodiff.HookGradients;
import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.discovery.HookLayout;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.Unit;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.training.ClassificationHead;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Activation patching and attribution patching over hooks × positions (TransformerLens's {@code get_act_patch_*} and
 * attribution patching, on any hooked graph). For each hook and each position of a base / source pair of equal
 * length, activation patching runs the base with that one activation taken from the source and reports the metric's
 * move as a share of the way from base to source: {@code (m(patched) − m(base)) / (m(source) − m(base))}.
 * Attribution patching estimates the same grid to first order from one forward and one backward of the base,
 * {@code Σ_k ∂m/∂a[t, k] · (a_source[t, k] − a_base[t, k])}, on the same scale. The source runs once for all hooks;
 * positions are fed per row to one spliced graph with a site at every hook, so a sweep compiles one graph (and one
 * that caches the source's hooks), not one per hook or cell, and each run patches up to 16 cells, one per row.
 */
public final class ActivationPatching {
    private ActivationPatching() {
    }

    /** What a metric reads off an output: a linear probe, or one token's cross-entropy or probability. */
    public enum Kind { LINEAR, TOKEN_LOSS, TOKEN_PROBABILITY }

    /**
     * A metric of one model output. {@code LINEAR}: {@code Σ_{b,t} mask[b, t] · ⟨output[b, t, :], probe⟩}, a logit
     * difference (probe {@code e_correct − e_wrong}, mask 1 at the last real token) or a sentence embedding's
     * projection on a direction (mask: the mean-pooling weights); its backward graph is the masked probe sum.
     * {@code TOKEN_LOSS}: {@code −log softmax(logits[t])[token]} at the position the mask marks (the last real
     * token), TransformerLens's loss metric; {@code TOKEN_PROBABILITY}: {@code softmax(logits[t])[token]}, the label
     * probability. Both token metrics differentiate through the token cross-entropy graph, the probability by the
     * chain rule at the base ({@code ∂p = −p · ∂loss}).
     */
    public record Metric(String output, INDArray probe, INDArray mask, Kind kind, long token) {
        /** A linear metric. */
        public Metric(String output, INDArray probe, INDArray mask) {
            this(output, probe, mask, Kind.LINEAR, -1);
        }

        /** The metric of a run's outputs (one row). */
        public double of(Map<String, INDArray> outputs) {
            return perRow(outputs)[0];
        }

        /** The metric of each row of a run whose rows are copies of the one sentence the mask was made for. */
        public double[] perRow(Map<String, INDArray> outputs) {
            INDArray out = outputs.get(output);
            INDArray weights = mask.castTo(DataType.DOUBLE).reshape(out.size(1));
            double[] m = new double[(int) out.size(0)];
            if (kind == Kind.LINEAR) {
                INDArray projected = out.castTo(DataType.DOUBLE).reshape(out.size(0) * out.size(1), out.size(2))
                        .mmul(probe.castTo(DataType.DOUBLE).reshape(probe.length(), 1)).reshape(out.size(0),
                                out.size(1));
                INDArray rows = projected.mmul(weights.reshape(out.size(1), 1)); // [b, 1]
                for (int r = 0; r < m.length; r++) {
                    m[r] = rows.getDouble(r, 0);
                }
                return m;
            }
            for (int r = 0; r < m.length; r++) {
                for (int t = 0; t < out.size(1); t++) {
                    double w = weights.getDouble(t);
                    if (w == 0) {
                        continue;
                    }
                    INDArray logits = out.get(NDArrayIndex.point(r), NDArrayIndex.point(t), NDArrayIndex.all())
                            .castTo(DataType.DOUBLE);
                    double max = logits.maxNumber().doubleValue();
                    double lse = max + Math.log(org.nd4j.linalg.ops.transforms.Transforms.exp(logits.sub(max), false)
                            .sumNumber().doubleValue());
                    double loss = lse - logits.getDouble(token);
                    m[r] += w * (kind == Kind.TOKEN_LOSS ? loss : Math.exp(-loss));
                }
            }
            return m;
        }

        /** The loss graph attribution patching differentiates, with its feeds. */
        java.util.function.Function<dev.jreft.hooks.graph.OnnxGraph, String> lossGraph() {
            return kind == Kind.LINEAR ? g -> LossGraphs.maskedProbeSum(g, output, probe.length())
                    : g -> LossGraphs.tokenCrossEntropy(g, output);
        }

        Map<String, INDArray> lossFeeds() {
            if (kind == Kind.LINEAR) {
                return Map.of(LossGraphs.PROBE, probe, LossGraphs.MASK, mask);
            }
            long s = mask.length();
            INDArray targets = Nd4j.valueArrayOf(new long[] {1, s, 1}, token, DataType.LONG);
            return Map.of(LossGraphs.WEIGHTS, mask.castTo(DataType.FLOAT).reshape(1, s), LossGraphs.TARGETS,
                    targets);
        }

        /** d metric / d loss at the base, whose metric is {@code m0}: 1, or −p for the probability. */
        double chain(double m0) {
            return kind == Kind.TOKEN_PROBABILITY ? -m0 : 1;
        }

        /** The cross-entropy of {@code token} at the base's last real token of a causal LM's first output. */
        public static Metric tokenLoss(HookedModel model, Batch base, long token) {
            return token(model, base, token, Kind.TOKEN_LOSS);
        }

        /** The probability of {@code token} at the base's last real token of a causal LM's first output. */
        public static Metric tokenProbability(HookedModel model, Batch base, long token) {
            return token(model, base, token, Kind.TOKEN_PROBABILITY);
        }

        private static Metric token(HookedModel model, Batch base, long token, Kind kind) {
            String out = model.graph().outputNames().get(0);
            checkToken(model, token, kind.name().toLowerCase(java.util.Locale.ROOT));
            return new Metric(out, Nd4j.zeros(DataType.FLOAT, 1), ClassificationHead.poolWeights(base,
                    ClassificationHead.Pooling.LAST), kind, token);
        }

        private static long checkToken(HookedModel model, long id, String metric) {
            long vocab = dev.jreft.hooks.discovery.TokenEmbedding.of(model.graph()).map(
                    dev.jreft.hooks.discovery.TokenEmbedding::vocab).orElseThrow(() -> new IllegalArgumentException(
                    metric + " needs a token model (no token embedding found in the graph)"));
            String out = model.graph().outputNames().get(0);
            long width = model.graph().lastDim(out);
            if (width != vocab) { // an encoder: its first output is hidden states, not logits over the vocabulary
                throw new ConfigException("metric", metric, "embedding_direction for this model (its first output '"
                        + out + "' is " + (width < 0 ? "of unknown width" : width + " wide") + ", not logits over its "
                        + vocab + " tokens)");
            }
            if (id < 0 || id >= vocab) {
                throw new ConfigException("token id", id, "an id in 0.." + (vocab - 1) + " (the model's vocabulary)");
            }
            return vocab;
        }

        /**
         * How far a sentence embedding (the mean over real tokens of {@code output}) goes from the base's towards the
         * source's: the projection on the unit direction between the two clean embeddings.
         */
        public static Metric embeddingDirection(HookedModel model, Batch base, Batch source) {
            String out = model.graph().outputNames().get(0);
            INDArray b = ClassificationHead.pool(model.run(base).get(out), base, ClassificationHead.Pooling.MEAN);
            INDArray s = ClassificationHead.pool(model.run(source).get(out), source, ClassificationHead.Pooling.MEAN);
            INDArray direction = s.sub(b).reshape(-1);
            double norm = direction.norm2Number().doubleValue();
            if (norm == 0) {
                throw new IllegalArgumentException("the base and the source have the same embedding: no direction to"
                        + " measure a patch along");
            }
            return new Metric(out, direction.div(norm).castTo(DataType.FLOAT),
                    ClassificationHead.poolWeights(base, ClassificationHead.Pooling.MEAN));
        }

        /** {@code logits[last real token, correct] − logits[last real token, wrong]} of a causal LM's first output. */
        public static Metric logitDifference(HookedModel model, Batch base, long correct, long wrong) {
            String out = model.graph().outputNames().get(0);
            long vocab = checkToken(model, correct, "logit_difference");
            checkToken(model, wrong, "logit_difference");
            INDArray probe = Nd4j.zeros(DataType.FLOAT, vocab);
            probe.putScalar(correct, 1);
            probe.putScalar(wrong, -1);
            return new Metric(out, probe, ClassificationHead.poolWeights(base, ClassificationHead.Pooling.LAST));
        }
    }

    /** What a grid's columns are: token positions, or attention heads (each patched at every position). */
    public enum Across { POSITION, HEAD }

    /**
     * A grid of effects: {@code effect[h][c]} for hook {@code hooks[h]} at column c (a position, or a head), as a
     * share of the metric's distance from base to source; the two clean metrics; the graphs the sweep compiled.
     */
    public record Grid(List<String> hooks, double[][] effect, double baseMetric, double sourceMetric,
                       int graphsCompiled, Across across) {
        /** A hooks × positions grid. */
        public Grid(List<String> hooks, double[][] effect, double baseMetric, double sourceMetric, int graphsCompiled) {
            this(hooks, effect, baseMetric, sourceMetric, graphsCompiled, Across.POSITION);
        }

        /** How many columns: positions, or heads for a grid {@link Across#HEAD}. */
        public int positions() {
            return effect.length == 0 ? 0 : effect[0].length;
        }
    }

    /**
     * At most this many cells per run: the base is repeated once per cell, each row patched at its own site and
     * positions (the positions are fed per row, a row of no positions is left alone).
     */
    static final int CELLS_PER_RUN = 16;

    /** Bytes of cached source activations fed per run, which bound the rows of a run for long sequences. */
    static final long SOURCE_BYTES_PER_RUN = 32L << 20;

    /**
     * Activation patching at every position of every hook: one row per cell, up to {@link #CELLS_PER_RUN} cells per
     * run, one spliced graph for the whole grid (a site per hook, gated per row by its fed positions); one source run
     * in all.
     */
    public static Grid activation(HookedModel model, Batch base, Batch source, List<String> hooks, Metric metric) {
        check(model, base, source, hooks);
        int positions = base.seqLen();
        List<Cell> cells = new ArrayList<>();
        for (int h = 0; h < hooks.size(); h++) {
            for (int t = 0; t < positions; t++) {
                cells.add(new Cell(h, Unit.POS, new int[] {t}));
            }
        }
        return patch(model, base, source, hooks, cells, metric, positions, Across.POSITION);
    }

    /**
     * Activation patching per attention head (TransformerLens's {@code get_act_patch_attn_head_out_all_pos}): for each
     * hook with a head axis ({@code attention_value_output}, {@code query_output}, ...) and each head, the base runs
     * with that head's slice taken from the source at every position.
     */
    public static Grid activationByHead(HookedModel model, Batch base, Batch source, List<String> hooks,
                                        Metric metric) {
        int heads = checkHeads(model, base, source, hooks);
        int[] every = java.util.stream.IntStream.range(0, base.seqLen()).toArray();
        List<Cell> cells = new ArrayList<>();
        for (int h = 0; h < hooks.size(); h++) {
            for (int k = 0; k < heads; k++) {
                cells.add(new Cell(h, Unit.heads(k), every));
            }
        }
        return patch(model, base, source, hooks, cells, metric, heads, Across.HEAD);
    }

    /** One cell of a grid: the hook (an index), the unit patched and the positions (in the base and the source). */
    private record Cell(int hook, Unit unit, int[] positions) {
    }

    /**
     * Runs every cell, {@code columns} per hook in order, and returns their effects. There is one site per distinct
     * hook and unit in every run, so the grid compiles one graph whatever rows a run holds; a row takes its cell's
     * positions at its cell's site and none elsewhere.
     */
    private static Grid patch(HookedModel model, Batch base, Batch source, List<String> hooks, List<Cell> cells,
                              Metric metric, int columns, Across across) {
        int before = model.variantCount();
        ActivationCache src = model.runWithCache(source, hooks);
        double m0 = metric.of(model.run(base));
        double m1 = metric.of(src.outputs());
        Map<String, Integer> siteOf = new LinkedHashMap<>();
        List<Cell> siteCells = new ArrayList<>();
        for (Cell c : cells) {
            if (siteOf.putIfAbsent(c.hook() + "|" + c.unit(), siteCells.size()) == null) {
                siteCells.add(c);
            }
        }
        long bytesPerRow = 0;
        for (Cell c : siteCells) {
            bytesPerRow += 4L * src.get(hooks.get(c.hook())).length();
        }
        int perRun = (int) Math.max(1, Math.min(CELLS_PER_RUN, SOURCE_BYTES_PER_RUN / Math.max(1, bytesPerRow)));
        IntervenableModel im = new IntervenableModel(model);
        double[] effects = new double[cells.size()];
        for (int first = 0; first < cells.size(); first += perRun) {
            int rows = Math.min(perRun, cells.size() - first);
            List<InterventionSite> sites = new ArrayList<>();
            for (int site = 0; site < siteCells.size(); site++) {
                int[][] at = new int[rows][];
                for (int r = 0; r < rows; r++) {
                    Cell c = cells.get(first + r);
                    at[r] = siteOf.get(c.hook() + "|" + c.unit()) == site ? c.positions() : new int[0];
                }
                Cell template = siteCells.get(site);
                INDArray cached = src.get(hooks.get(template.hook()));
                sites.add(InterventionSite.at(hooks.get(template.hook()), new VanillaInterchange())
                        .unit(template.unit()).positions(at).source(Source.cached(cached.repeat(0, rows)), at).build());
            }
            double[] m = metric.perRow(im.run(repeat(base, rows), sites).outputs());
            for (int r = 0; r < rows; r++) {
                effects[first + r] = (m[r] - m0) / (m1 - m0);
            }
        }
        double[][] effect = new double[hooks.size()][columns];
        for (int i = 0; i < cells.size(); i++) {
            effect[cells.get(i).hook()][i % columns] = effects[i];
        }
        return new Grid(List.copyOf(hooks), effect, m0, m1, model.variantCount() - before, across);
    }

    /** {@code batch} (one row) repeated {@code rows} times. */
    private static Batch repeat(Batch batch, int rows) {
        Map<String, INDArray> inputs = new java.util.LinkedHashMap<>();
        batch.inputs().forEach((name, value) -> inputs.put(name, value.repeat(0, rows)));
        return new Batch(inputs);
    }

    /** Attribution patching: the first-order estimate of {@link #activation}'s grid from one forward and backward. */
    public static Grid attribution(HookedModel model, Batch base, Batch source, List<String> hooks, Metric metric) {
        check(model, base, source, hooks);
        return attribution(model, base, source, hooks, metric, 0);
    }

    /**
     * {@code ∂m/∂a · (a_source − a_base)} at each hook, summed per position ({@code heads} 0) or per head over all
     * positions.
     */
    private static Grid attribution(HookedModel model, Batch base, Batch source, List<String> hooks, Metric metric,
                                    int heads) {
        int before = model.variantCount();
        ActivationCache src = model.runWithCache(source, hooks);
        ActivationCache clean = model.runWithCache(base, hooks);
        double m0 = metric.of(clean.outputs());
        double scale = metric.of(src.outputs()) - m0;
        GraphGradients.Result g = HookGradients.compute(model, base, metric.lossGraph(), metric.lossFeeds(), hooks);
        double chain = metric.chain(m0);
        int positions = base.seqLen();
        double[][] effect = new double[hooks.size()][heads == 0 ? positions : heads];
        for (int h = 0; h < hooks.size(); h++) {
            String hook = hooks.get(h);
            INDArray delta = src.get(hook).castTo(DataType.DOUBLE).sub(clean.get(hook).castTo(DataType.DOUBLE));
            INDArray product = g.gradients().get(hook).castTo(DataType.DOUBLE).mul(delta); // [1, s, w]
            INDArray cells = heads == 0 ? product.sum(2).reshape(positions) // per position
                    : product.reshape(positions, heads, product.size(2) / heads).sum(0, 2); // per head
            for (int c = 0; c < effect[h].length; c++) {
                effect[h][c] = chain * cells.getDouble(c) / scale;
            }
        }
        return new Grid(List.copyOf(hooks), effect, m0, m0 + scale, model.variantCount() - before,
                heads == 0 ? Across.POSITION : Across.HEAD);
    }

    /**
     * Attribution patching per attention head: {@code Σ_{t, k in head} ∂m/∂a[t, k] · (a_source − a_base)[t, k]}, the
     * first-order estimate of {@link #activationByHead}'s grid from one forward and one backward.
     */
    public static Grid attributionByHead(HookedModel model, Batch base, Batch source, List<String> hooks,
                                         Metric metric) {
        return attribution(model, base, source, hooks, metric, checkHeads(model, base, source, hooks));
    }

    /** Pearson correlation of two grids over all their cells. */
    public static double correlation(Grid a, Grid b) {
        if (!a.hooks().equals(b.hooks()) || a.positions() != b.positions() || a.across() != b.across()) {
            throw new IllegalArgumentException("the grids cover different hooks or positions");
        }
        double[] x = flat(a);
        double[] y = flat(b);
        double mx = java.util.Arrays.stream(x).average().orElse(0);
        double my = java.util.Arrays.stream(y).average().orElse(0);
        double sxy = 0;
        double sxx = 0;
        double syy = 0;
        for (int i = 0; i < x.length; i++) {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxy / Math.sqrt(sxx * syy);
    }

    private static double[] flat(Grid g) {
        return java.util.Arrays.stream(g.effect()).flatMapToDouble(java.util.Arrays::stream).toArray();
    }

    /** {@link #check}, and every hook has a head axis; returns the number of heads. */
    private static int checkHeads(HookedModel model, Batch base, Batch source, List<String> hooks) {
        check(model, base, source, hooks);
        for (int i = 0; i < hooks.size(); i++) {
            HookLayout layout = model.hook(hooks.get(i)).layout();
            if (layout.kind() != HookLayout.Kind.HEADS) {
                throw new ConfigException("hooks[" + i + "]", hooks.get(i) + " of shape " + layout.shape(),
                        "a hook with a head axis, [batch, seq, heads*head_dim] (query_output, key_output,"
                        + " value_output, attention_value_output)");
            }
        }
        long heads = model.hook(hooks.get(0)).layout().heads();
        for (int i = 1; i < hooks.size(); i++) {
            long k = model.hook(hooks.get(i)).layout().heads();
            if (k != heads) { // Llama's key and value heads are fewer than its query heads
                throw new ConfigException("hooks[" + i + "]", hooks.get(i) + " with " + k + " heads", "hooks with "
                        + heads + " heads, as " + hooks.get(0) + " (one grid has one head axis; sweep the others apart)");
            }
        }
        return (int) heads;
    }

    /** One pair of equal length, hooks that exist and hold [batch, positions, width] values. */
    private static void check(HookedModel model, Batch base, Batch source, List<String> hooks) {
        if (base.size() != 1 || source.size() != 1) {
            throw new ConfigException("batch", base.size() + " and " + source.size() + " rows", "one base and one"
                    + " source sentence (patch pairs one at a time)");
        }
        if (base.seqLen() != source.seqLen()) {
            throw new ConfigException("source", source.seqLen() + " tokens against the base's " + base.seqLen(),
                    "a source of the base's length, " + base.seqLen() + " tokens (positions are patched one to one)");
        }
        if (hooks.isEmpty()) {
            throw ConfigException.of("hooks", "found none; valid: one or more hook names");
        }
        for (int i = 0; i < hooks.size(); i++) {
            HookLayout layout = model.hook(hooks.get(i), "hooks[" + i + "]").layout();
            if (!layout.positional()) {
                throw new ConfigException("hooks[" + i + "]", hooks.get(i) + " of shape " + layout.shape(),
                        "a hook with a position axis, [batch, seq, width] (attention weights are per head pair)");
            }
        }
    }
}
