package dev.jreft.interventions;

import dev.jreft.hooks.discovery.HookLayout;
import dev.jreft.hooks.discovery.HookPoint;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.CompiledGraph;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs a model with interventions spliced into its graph. Per site the graph gains the intervention's formula on
 * the hook tensor and Where(position mask AND feature mask, formula, hook). Positions, the feature mask, source
 * values, parameters and the intervention's non-trained inputs ({@link Intervention#inputShapes}) are graph inputs,
 * so only a new (hook, intervention) structure builds a new session; new positions, heads, sources or parameter
 * values reuse it. A site's params map carries both parameters and non-trained inputs; a non-trained input it
 * leaves out is fed {@link Intervention#inputDefault} (for the ReFT dropout mask: ones, i.e. evaluation mode).
 */
public final class IntervenableModel {
    private final HookedModel model;

    public IntervenableModel(HookedModel model) {
        this.model = model;
    }

    public HookedModel model() {
        return model;
    }

    public InterventionResult run(Batch base, List<InterventionSite> sites) {
        return run(base, sites, List.of());
    }

    /** Runs {@code base} with {@code sites}; {@code readHooks} are returned as they are after the interventions. */
    public InterventionResult run(Batch base, List<InterventionSite> sites, List<String> readHooks) {
        return run(base, List.of(), sites, readHooks);
    }

    /**
     * Runs {@code base} with module edits (LoRA ...) made to the model and hook interventions on the edited model;
     * {@code readHooks} are returned as they are after both.
     */
    public InterventionResult run(Batch base, List<? extends ModelEdit> edits, List<InterventionSite> sites,
                                  List<String> readHooks) {
        Spliced sp = splice(base, edits, sites, readHooks, true);
        List<String> wanted = new ArrayList<>(model.graph().outputNames());
        sp.reads.forEach(r -> wanted.add(r.tensor()));
        for (Prepared p : sp.prepared) {
            if (p.form == Form.COLLECT) {
                wanted.add(p.ns + ".collected");
            }
        }
        Map<String, INDArray> out = sp.graph.run(sp.feeds, wanted.stream().distinct().toList());
        Map<String, INDArray> outputs = new LinkedHashMap<>();
        model.graph().outputNames().forEach(o -> outputs.put(o, out.get(o)));
        Map<String, INDArray> hooks = new LinkedHashMap<>();
        sp.reads.forEach(r -> hooks.put(r.name(), sp.prompt == null ? out.get(r.tensor())
                : sp.prompt.trim(out.get(r.tensor()))));
        List<INDArray> collected = new ArrayList<>();
        for (Prepared p : sp.prepared) {
            collected.add(p.form == Form.COLLECT ? selectFeatures(out.get(p.ns + ".collected"), p.mask) : null);
        }
        return new InterventionResult(outputs, hooks, collected);
    }

    /**
     * Loss of the intervened run, the gradient of every site's parameters ({@code perSite.get(i).get("v")}) and of
     * extra graph inputs the loss declared (a classification head's weights).
     */
    public record Gradients(double loss, List<Map<String, INDArray>> perSite, Map<String, INDArray> extra,
                            List<Map<String, INDArray>> perEdit) {
    }

    /**
     * Gradients of a loss (appended to the intervened graph by {@code appendLoss}) with respect to the parameters
     * of every site; the model's weights are frozen, source values and non-trained inputs (dropout masks,
     * temperatures) are constants and get no entry.
     */
    public Gradients gradients(Batch base, List<InterventionSite> sites,
                               java.util.function.Function<OnnxGraph, String> appendLoss,
                               Map<String, INDArray> lossFeeds) {
        return gradients(base, sites, null, appendLoss, lossFeeds);
    }

    /**
     * As above; with a non-null {@code lossKey} (naming the loss) the backward graph is cached, so later batches of
     * the same shapes reuse its session.
     */
    public Gradients gradients(Batch base, List<InterventionSite> sites, String lossKey,
                               java.util.function.Function<OnnxGraph, String> appendLoss,
                               Map<String, INDArray> lossFeeds) {
        return gradients(base, sites, lossKey, appendLoss, lossFeeds, List.of());
    }

    /** As above, also differentiating {@code extraSources}: graph inputs that {@code appendLoss} declares. */
    public Gradients gradients(Batch base, List<InterventionSite> sites, String lossKey,
                               java.util.function.Function<OnnxGraph, String> appendLoss,
                               Map<String, INDArray> lossFeeds, List<String> extraSources) {
        return gradients(base, List.of(), sites, lossKey, appendLoss, lossFeeds, extraSources);
    }

    /** As above with module edits: their parameters' gradients come back in {@link Gradients#perEdit}. */
    public Gradients gradients(Batch base, List<? extends ModelEdit> edits, List<InterventionSite> sites, String lossKey,
                               java.util.function.Function<OnnxGraph, String> appendLoss,
                               Map<String, INDArray> lossFeeds, List<String> extraSources) {
        Spliced sp = splice(base, edits, sites, List.of(), true);
        List<String> params = new ArrayList<>();
        sp.editParams.forEach(e -> params.addAll(e.values()));
        for (Prepared p : sp.prepared) {
            params.addAll(p.paramInputs.values());
        }
        params.addAll(extraSources);
        if (params.isEmpty()) {
            throw new IllegalArgumentException("no site has trainable parameters; nothing to differentiate");
        }
        var r = lossKey == null
                ? dev.jreft.hooks.autodiff.GraphGradients.compute(sp.graph.graph(), sp.feeds, appendLoss, lossFeeds,
                        params, model.runtime())
                : dev.jreft.hooks.autodiff.GraphGradients.compute(sp.graph.fingerprint(), lossKey, sp.graph.graph(),
                        sp.feeds, appendLoss, lossFeeds, params, model.runtime());
        List<Map<String, INDArray>> perSite = new ArrayList<>();
        for (Prepared p : sp.prepared) {
            Map<String, INDArray> m = new LinkedHashMap<>();
            p.paramInputs.forEach((name, input) -> m.put(name, r.gradients().get(input)));
            perSite.add(m);
        }
        Map<String, INDArray> extra = new LinkedHashMap<>();
        extraSources.forEach(x -> extra.put(x, r.gradients().get(x)));
        List<Map<String, INDArray>> perEdit = new ArrayList<>();
        for (Map<String, String> e : sp.editParams) {
            Map<String, INDArray> m = new LinkedHashMap<>();
            e.forEach((name, input) -> m.put(name, r.gradients().get(input)));
            perEdit.add(m);
        }
        return new Gradients(r.loss(), perSite, extra, perEdit);
    }

    /**
     * The edited and intervened graph as an ONNX graph of its own (a copy, not compiled), with the feeds a run of
     * {@code base} gives it and, per hook site in order, the name of its position-mask input: what an export
     * freezes and rewrites into a graph that needs no jreft.
     */
    public record ExportGraph(OnnxGraph graph, Map<String, INDArray> feeds, List<String> positionMasks) {
    }

    public ExportGraph exportGraph(Batch base, List<? extends ModelEdit> edits, List<InterventionSite> sites) {
        // dense sites: an export defines each position mask from the attention mask inside the graph
        Spliced sp = splice(base, edits, sites, List.of(), false);
        if (sp.prompt != null) { // its graph reads the extended batch; an export must read the user's
            throw new IllegalArgumentException(sp.prompt.site.edit().type() + ": a standalone export of a sequence"
                    + " edit is not supported yet; valid: export ReFT, adapter, IA3 or merged LoRA / DoRA models");
        }
        List<String> masks = new ArrayList<>();
        for (Prepared p : sp.prepared) {
            if (p.form == Form.COLLECT) {
                throw new IllegalArgumentException("a collect site reads values; an export has nothing to return"
                        + " them to");
            }
            masks.add(p.ns + ".position_mask");
        }
        return new ExportGraph(sp.graph.graph().copy(), sp.feeds, masks);
    }

    /**
     * {@code editParams.get(i)}: edit i's parameter names -> graph inputs, in the order the edits were given;
     * {@code prompt}: the sequence edit, or null.
     */
    private record Spliced(CompiledGraph graph, Map<String, INDArray> feeds, List<Map<String, String>> editParams,
                           List<Prepared> prepared, List<HookPoint> reads, SequenceSplice prompt) {
    }

    /** The intervened graph variant (built once per structure) and the feeds for this batch and these sites. */
    private Spliced splice(Batch base, List<? extends ModelEdit> editSites, List<InterventionSite> sites,
                           List<String> readHooks, boolean rowsAllowed) {
        SequenceSplice prompt = null;
        for (int i = 0; i < editSites.size(); i++) {
            if (editSites.get(i) instanceof SequenceSite s) {
                if (prompt != null) {
                    throw new IllegalArgumentException("edit " + i + " (" + s.edit().type() + "): a model takes"
                            + " one sequence edit; edit " + editSites.indexOf(prompt.site) + " ("
                            + prompt.site.edit().type() + ") is one already");
                }
                prompt = SequenceSplice.prepare(model, i, s, base); // it completes the batch it extends
            }
        }
        Batch b = prompt != null ? prompt.extended : model.complete(base);
        List<PreparedEdit> edits = new ArrayList<>();
        List<Map<String, String>> editParams = new ArrayList<>();
        for (int i = 0; i < editSites.size(); i++) {
            if (editSites.get(i) instanceof ModuleSite m) {
                PreparedEdit e = prepareEdit(i, m);
                edits.add(e);
                editParams.add(e.paramInputs);
            } else {
                editParams.add(prompt.paramInputs);
            }
        }
        if (prompt != null && prompt.offset() > 0) {
            List<InterventionSite> shifted = new ArrayList<>();
            for (InterventionSite s : sites) {
                if (s.source() != null) {
                    throw new IllegalArgumentException("site " + shifted.size() + " (" + s.intervention().type()
                            + " at " + s.hook() + "): a site with a source cannot be combined with "
                            + prompt.site.edit().type() + " yet; valid: sites without a source (ReFT, adapters, IA3)");
                }
                shifted.add(s.shifted(prompt.offset()));
            }
            sites = shifted;
        }
        Map<Batch, ActivationCache> sourceRuns = runSources(sites);
        List<Prepared> prepared = new ArrayList<>();
        for (int i = 0; i < sites.size(); i++) {
            prepared.add(prepare(i, sites.get(i), b, sourceRuns, rowsAllowed && dev.jreft.hooks.io.SystemSettings.flag(ROWS, true)));
        }
        List<HookPoint> reads = readHooks.stream().map(model::hook).toList();
        StringBuilder key = new StringBuilder("intervene");
        if (prompt != null) {
            key.append(prompt.key());
        }
        for (PreparedEdit e : edits) {
            key.append("|edit:").append(e.module.path()).append(':').append(e.site.edit().structureKey());
            e.declaredShapes.forEach((name, shape) -> key.append(':').append(name).append(Arrays.toString(shape)));
        }
        for (Prepared p : prepared) {
            // derived, never written by hand: every declared input shape is part of the compiled graph, so two
            // sites that differ only in a rank or a width need two graphs
            key.append('|').append(p.point.tensor()).append(':').append(p.site.intervention().structureKey())
                    .append(':').append(p.form).append(":w=").append(p.width);
            p.declaredShapes.forEach((name, shape) -> key.append(':').append(name).append(Arrays.toString(shape)));
        }
        reads.forEach(r -> key.append("|read:").append(r.tensor()));
        SequenceSplice sequence = prompt;
        CompiledGraph graph = model.variant(key.toString(), g -> {
            // edits first: they are part of the model, so hook interventions at their outputs see the edited value
            if (sequence != null) {
                sequence.splice(g);
            }
            for (PreparedEdit e : edits) {
                splice(g, e);
            }
            for (Prepared p : prepared) {
                splice(g, p);
            }
            reads.forEach(r -> g.exposeOutput(r.tensor(), ElemTypes.FLOAT));
        });
        Map<String, INDArray> feeds = new LinkedHashMap<>(model.feeds(b));
        if (prompt != null) {
            feeds.putAll(prompt.feeds);
        }
        for (PreparedEdit e : edits) {
            feeds.putAll(e.feeds);
        }
        for (Prepared p : prepared) {
            feeds.putAll(p.feeds);
        }
        return new Spliced(graph, feeds, editParams, prepared, reads, prompt);
    }

    /** Runs each distinct source batch once, unintervened, caching the hooks its sites read. */
    private Map<Batch, ActivationCache> runSources(List<InterventionSite> sites) {
        Map<Batch, List<String>> needed = new IdentityHashMap<>();
        for (InterventionSite s : sites) {
            if (s.source() instanceof Source.Run r) {
                needed.computeIfAbsent(r.batch(), k -> new ArrayList<>()).add(s.hook());
            }
        }
        Map<Batch, ActivationCache> runs = new IdentityHashMap<>();
        needed.forEach((batch, hooks) -> runs.put(batch, model.runWithCache(batch, hooks.stream().distinct().toList())));
        return runs;
    }

    /**
     * One site ready to splice: {@code paramInputs} and {@code otherInputs} map the intervention's parameter and
     * non-trained input names to graph input names; {@code declaredShapes} holds the declared shapes of both.
     */
    private record Prepared(InterventionSite site, HookPoint point, String ns, Form form, long width,
                            boolean[] mask, Map<String, String> paramInputs, Map<String, String> otherInputs,
                            Map<String, long[]> declaredShapes, Map<String, INDArray> feeds) {
    }

    /**
     * How a site enters the graph. {@code DENSE}: the formula runs on the whole [b, s, w] tensor and Where keeps it at
     * the selected positions. {@code ROWS}: the selected rows are gathered, the formula runs on them alone and they
     * are scattered back: for a row-wise formula at a few positions (the ReFT family at f1+l1) this skips the
     * formula, the Where and their gradients over every other position. {@code EVERY}: every position and every
     * feature are selected (an adapter, an IA3 scale), so the formula's output is the new tensor, with no masks and
     * no Where (IA3 on MiniLM: 52 Wheres over [b, s, w] tensors, a third of its training step). {@code COLLECT}: the
     * rows are returned.
     */
    enum Form {
        DENSE, ROWS, EVERY, COLLECT
    }

    /**
     * System property: {@code false} splices every site densely (the rows and every-position forms are
     * optimisations with the same results; this switch is for comparing them).
     */
    public static final String ROWS = "jreft.interventions.rows";

    /**
     * The positions of each row, distinct and in order, when every row has the same number k >= 1 of them (the
     * rows form gathers b·k rows: a count that varied with the batch's contents would build a graph per count);
     * null otherwise.
     */
    static int[][] uniformPositions(int[][] positions) {
        int[][] out = new int[positions.length][];
        for (int b = 0; b < positions.length; b++) {
            out[b] = Arrays.stream(positions[b]).distinct().sorted().toArray();
            if (out[b].length == 0 || out[b].length != out[0].length) {
                return null;
            }
        }
        return out.length == 0 ? null : out;
    }

    /** Whether each row selects every one of the {@code seqLen} positions. */
    static boolean everyPosition(int[][] positions, int seqLen) {
        for (int[] row : positions) {
            if (Arrays.stream(row).distinct().count() != seqLen) { // positions were checked to lie in range
                return false;
            }
        }
        return positions.length > 0;
    }

    private static boolean allTrue(boolean[] mask) {
        for (boolean m : mask) {
            if (!m) {
                return false;
            }
        }
        return true;
    }

    /** Row indices into the [b·s, w] view of a hook tensor: b·seqLen + p for each selected (b, p), row-major. */
    static INDArray flatRows(int[][] positions, int seqLen) {
        int n = Arrays.stream(positions).mapToInt(r -> r.length).sum();
        long[] idx = new long[n];
        int k = 0;
        for (int b = 0; b < positions.length; b++) {
            for (int p : positions[b]) {
                idx[k++] = (long) b * seqLen + p;
            }
        }
        return Nd4j.createFromArray(idx);
    }

    private Prepared prepare(int index, InterventionSite site, Batch base, Map<Batch, ActivationCache> sourceRuns,
                             boolean rowsAllowed) {
        HookPoint point = model.hook(site.hook());
        Intervention iv = site.intervention();
        String where = "site " + index + " (" + iv.type() + " at " + site.hook() + ")";
        long width = width(point, base, where);
        boolean[] mask = featureMask(site, point, width, where);
        int[][] basePos = site.basePositions();
        if (basePos == null) {
            throw new IllegalArgumentException(where + ": no base positions given");
        }
        if (basePos.length != base.size()) {
            throw new IllegalArgumentException(where + ": batch mismatch: base positions have " + basePos.length
                    + " rows but the batch has " + base.size() + " examples");
        }
        checkPositions(basePos, base, "base", site.onPadding(), where);
        String ns = "jreft.site" + index;
        Map<String, INDArray> feeds = new LinkedHashMap<>();
        boolean collect = iv.type().equals("collect");
        feeds.put(ns + ".feature_mask", Nd4j.createFromArray(mask));
        if (iv.needsSource()) {
            feeds.put(ns + ".source", aligned(sourceValues(site, point, width, base, sourceRuns, where), basePos,
                    site.sourcePositions(), base.seqLen()));
        } else if (site.source() != null) {
            throw new IllegalArgumentException(where + ": " + iv.type() + " takes no source, but one was given");
        }
        Map<String, String> paramInputs = new LinkedHashMap<>();
        Map<String, long[]> declaredShapes = new LinkedHashMap<>();
        Map<String, long[]> paramShapes;
        Map<String, long[]> inputShapes;
        try {
            paramShapes = iv.parameterShapes(width);
            inputShapes = iv.inputShapes(width);
        } catch (IllegalArgumentException e) { // the intervention's own settings against this hook
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        int[][] rows = rowsAllowed && !collect && iv.rowwise() && !iv.needsSource() && inputShapes.isEmpty()
                ? uniformPositions(basePos) : null;
        boolean every = rowsAllowed && !collect && allTrue(mask) && everyPosition(basePos, base.seqLen());
        Form form = collect ? Form.COLLECT : every ? Form.EVERY : rows != null ? Form.ROWS : Form.DENSE;
        switch (form) {
            case COLLECT -> feeds.put(ns + ".base_index", indexPairs(basePos));
            case ROWS -> feeds.put(ns + ".rows", flatRows(rows, base.seqLen()));
            case EVERY -> feeds.remove(ns + ".feature_mask");
            default -> feeds.put(ns + ".position_mask", positionMask(basePos, base));
        }
        for (String given : site.params().keySet()) {
            if (!paramShapes.containsKey(given) && !inputShapes.containsKey(given)) {
                List<String> valid = new ArrayList<>(paramShapes.keySet());
                valid.addAll(inputShapes.keySet());
                throw new IllegalArgumentException(where + ": params." + given + ": found a value for a parameter "
                        + iv.type() + " does not have; valid: " + (valid.isEmpty() ? "no parameters"
                        : String.join(", ", valid)));
            }
        }
        for (var e : paramShapes.entrySet()) {
            INDArray v = parameterValue(site.params().get(e.getKey()), e.getKey(), e.getValue(), where);
            paramInputs.put(e.getKey(), ns + "." + e.getKey());
            declaredShapes.put(ns + "." + e.getKey(), e.getValue());
            feeds.put(ns + "." + e.getKey(), v);
        }
        Map<String, String> otherInputs = new LinkedHashMap<>();
        for (var e : inputShapes.entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue();
            if (paramShapes.containsKey(name)) {
                throw new IllegalStateException(iv.type() + " declares '" + name + "' as both a parameter and a"
                        + " non-trained input");
            }
            INDArray v = nonTrainedValue(site.params().get(name), iv.inputDefault(name), name, shape, where);
            try {
                iv.checkInput(name, v);
            } catch (IllegalArgumentException bad) {
                throw new IllegalArgumentException(where + ": params." + bad.getMessage(), bad);
            }
            otherInputs.put(name, ns + "." + name);
            declaredShapes.put(ns + "." + name, shape);
            feeds.put(ns + "." + name, v.castTo(DataType.FLOAT));
        }
        return new Prepared(site, point, ns, form, width, mask, paramInputs, otherInputs, declaredShapes, feeds);
    }

    /**
     * One module edit ready to splice: {@code paramInputs} maps its parameter names to graph inputs, {@code feeds}
     * holds their values and the non-trained inputs' (given, default or detached copies).
     */
    private record PreparedEdit(ModuleSite site, LinearModule module, String ns, Map<String, String> paramInputs,
                                Map<String, String> otherInputs, Map<String, long[]> declaredShapes,
                                Map<String, INDArray> feeds) {
    }

    private PreparedEdit prepareEdit(int index, ModuleSite site) {
        ModuleEdit edit = site.edit();
        String where = "edit " + index + " (" + edit.type() + " at " + site.module() + ")";
        LinearModule module = model.modules().get(site.module()).orElseThrow(() -> new IllegalArgumentException(
                where + ": module: found '" + site.module() + "'; valid: a linear module of this graph: "
                        + model.modules().describeCandidates()));
        List<Parameter> declared;
        Map<String, long[]> inputShapes;
        try {
            declared = edit.parameters(module, () -> model.modules().weight(module));
            inputShapes = edit.inputShapes(module);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        String ns = "jreft.edit" + index;
        Map<String, INDArray> feeds = new LinkedHashMap<>();
        Map<String, String> paramInputs = new LinkedHashMap<>();
        Map<String, String> otherInputs = new LinkedHashMap<>();
        Map<String, long[]> declaredShapes = new LinkedHashMap<>();
        Set<String> known = new HashSet<>(inputShapes.keySet());
        declared.forEach(p -> known.add(p.name()));
        for (String given : site.params().keySet()) {
            if (!known.contains(given) || edit.detachedCopies().containsKey(given)) {
                throw new IllegalArgumentException(where + ": params." + given + ": found a value for a parameter "
                        + edit.type() + " does not have; valid: " + String.join(", ",
                        declared.stream().map(Parameter::name).toList()));
            }
        }
        for (Parameter p : declared) {
            INDArray v = parameterValue(site.params().get(p.name()), p.name(), p.shape(), where);
            String input = ns + "." + p.name();
            paramInputs.put(p.name(), input);
            declaredShapes.put(input, p.shape());
            feeds.put(input, v);
        }
        for (var e : inputShapes.entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue();
            String copyOf = edit.detachedCopies().get(name);
            INDArray v = nonTrainedValue(copyOf != null ? site.params().get(copyOf) : site.params().get(name),
                    edit.inputDefault(name), name, shape, where);
            String input = ns + "." + name;
            otherInputs.put(name, input);
            declaredShapes.put(input, shape);
            feeds.put(input, v.castTo(DataType.FLOAT));
        }
        return new PreparedEdit(site, module, ns, paramInputs, otherInputs, declaredShapes, feeds);
    }

    /** The module's output becomes the edit's {@code y'} for all its consumers; the edit reads the module's input. */
    private static void splice(OnnxGraph g, PreparedEdit e) {
        g.splice(e.module.output(), e.ns, (SubgraphBuilder b, String original) -> {
            e.declaredShapes.forEach((name, shape) -> b.input(name, ElemTypes.FLOAT, shape));
            Map<String, String> inputs = new LinkedHashMap<>(e.paramInputs);
            inputs.putAll(e.otherInputs);
            return e.site.edit().emit(b, e.module, e.module.input(), original, inputs);
        });
    }

    /** A given parameter value of its declared shape and finite, as float32; else an error naming it. */
    static INDArray parameterValue(INDArray v, String name, long[] shape, String where) {
        if (v == null) {
            throw new IllegalArgumentException(where + ": params." + name + ": found nothing; valid: a tensor of"
                    + " shape " + Arrays.toString(shape));
        }
        if (!Arrays.equals(v.shape(), shape)) {
            throw new IllegalArgumentException(where + ": params." + name + ": found shape "
                    + Arrays.toString(v.shape()) + "; valid: shape " + Arrays.toString(shape));
        }
        return finite(v.castTo(DataType.FLOAT), where + ": params." + name);
    }

    /**
     * The value fed for a non-trained input: the given one if it fits the declared shape (-1 dims take any size),
     * else the method's default filled to the shape (each -1 dim of size 1, so it broadcasts).
     */
    private static INDArray nonTrainedValue(INDArray given, Float fill, String name, long[] shape, String where) {
        INDArray v = given;
        if (v == null) {
            if (fill == null) {
                throw new IllegalArgumentException(where + ": params." + name + ": found nothing; valid: a tensor of"
                        + " shape " + shapeText(shape));
            }
            v = Nd4j.ones(DataType.FLOAT, Arrays.stream(shape).map(d -> d < 0 ? 1 : d).toArray()).muli(fill);
        } else if (!fits(v.shape(), shape)) {
            throw new IllegalArgumentException(where + ": params." + name + ": found shape "
                    + Arrays.toString(v.shape()) + "; valid: shape " + shapeText(shape));
        }
        return finite(v.castTo(DataType.FLOAT), where + ": params." + name);
    }

    /** {@code v} when every element is finite; a NaN or infinity would silently turn the outputs into NaN. */
    private static INDArray finite(INDArray v, String where) {
        // read in place: a copy per parameter per step was full finetuning's 90 MB of garbage a step
        java.nio.FloatBuffer own = dev.jreft.hooks.runtime.Tensors.floats(v);
        INDArray c = own != null ? v : v.castTo(DataType.FLOAT).dup('c');
        try {
            java.nio.FloatBuffer f = own != null ? own : dev.jreft.hooks.runtime.Tensors.floats(c);
            for (int i = 0, n = f.limit(); i < n; i++) {
                if (!Float.isFinite(f.get(i))) {
                    throw new IllegalArgumentException(where + ": found " + f.get(i) + " at element " + i + "; valid:"
                            + " finite values (float32: |x| < 3.4e38)");
                }
            }
        } finally {
            if (c != v) {
                c.close();
            }
        }
        return v;
    }

    /** True when {@code shape} has the declared rank and matches every declared dim that is not -1. */
    private static boolean fits(long[] shape, long[] declared) {
        if (shape.length != declared.length) {
            return false;
        }
        for (int i = 0; i < shape.length; i++) {
            if (declared[i] >= 0 && shape[i] != declared[i]) {
                return false;
            }
        }
        return true;
    }

    /** A declared shape with its -1 dims written as "any". */
    private static String shapeText(long[] declared) {
        return Arrays.stream(declared).mapToObj(d -> d < 0 ? "any" : Long.toString(d))
                .collect(java.util.stream.Collectors.joining(", ", "[", "]"));
    }

    private long width(HookPoint point, Batch base, String where) {
        HookLayout layout = point.layout();
        if (layout.kind() == HookLayout.Kind.RAW) {
            INDArray probe = model.runWithCache(base, point.name()).get(point.name());
            if (probe.rank() != 3 || probe.size(0) != base.size() || probe.size(1) != base.seqLen()) {
                throw new IllegalArgumentException(where + ": raw tensor has shape " + Arrays.toString(probe.shape())
                        + "; position interventions need a [batch, seq, width] tensor");
            }
            return probe.size(2);
        }
        if (!layout.positional()) {
            throw new IllegalArgumentException(where + ": the hook's layout is " + layout.shape()
                    + "; position units (pos, h.pos) apply to [batch, seq, width] hooks only");
        }
        return layout.width();
    }

    private static boolean[] featureMask(InterventionSite site, HookPoint point, long width, String where) {
        boolean[] mask = new boolean[(int) width];
        Unit unit = site.unit();
        int[] sub = site.subspace();
        if (!unit.isHeads()) {
            if (sub == null) {
                Arrays.fill(mask, true);
            } else {
                for (int k : sub) {
                    if (k < 0 || k >= width) {
                        throw new IllegalArgumentException(where + ": subspace index " + k + " is outside [0, "
                                + width + ")");
                    }
                    mask[k] = true;
                }
            }
            return mask;
        }
        HookLayout layout = point.layout();
        if (layout.kind() != HookLayout.Kind.HEADS) {
            throw new IllegalArgumentException(where + ": unit h.pos needs a per-head hook (query_output, key_output,"
                    + " value_output, attention_value_output); " + point.name() + " is " + layout.shape());
        }
        long dh = layout.headDim();
        for (int h : unit.heads()) {
            if (h < 0 || h >= layout.heads()) {
                throw new IllegalArgumentException(where + ": head index " + h + " is out of range; "
                        + point.name() + " has " + layout.heads() + " heads (valid: 0.." + (layout.heads() - 1) + ")");
            }
            if (sub == null) {
                Arrays.fill(mask, (int) (h * dh), (int) ((h + 1) * dh), true);
            } else {
                for (int k : sub) {
                    if (k < 0 || k >= dh) {
                        throw new IllegalArgumentException(where + ": subspace index " + k
                                + " is outside the head slice [0, " + dh + ")");
                    }
                    mask[(int) (h * dh + k)] = true;
                }
            }
        }
        return mask;
    }

    private static void checkPositions(int[][] positions, Batch batch, String which, boolean onPadding,
                                       String where) {
        for (int b = 0; b < positions.length; b++) {
            Set<Integer> seen = new HashSet<>();
            for (int p : positions[b]) {
                if (p < 0 || p >= batch.seqLen()) {
                    throw new IllegalArgumentException(where + ": " + which + " position " + p + " of example " + b
                            + " is out of range (sequence length " + batch.seqLen() + ", valid 0.."
                            + (batch.seqLen() - 1) + ")");
                }
                if (!onPadding && !batch.isReal(b, p)) {
                    throw new IllegalArgumentException(where + ": " + which + " position " + p + " of example " + b
                            + " is on padding (real tokens of that example: 0.." + batch.lastReal(b) + ")");
                }
                if (!seen.add(p) && which.equals("base")) {
                    throw new IllegalArgumentException(where + ": base position " + p + " of example " + b
                            + " is listed twice");
                }
            }
        }
    }

    private INDArray sourceValues(InterventionSite site, HookPoint point, long width, Batch base,
                                  Map<Batch, ActivationCache> sourceRuns, String where) {
        int[][] srcPos = site.sourcePositions();
        if (site.source() == null || srcPos == null) {
            throw new IllegalArgumentException(where + ": " + site.intervention().type()
                    + " needs a source and source positions");
        }
        if (srcPos.length != site.basePositions().length) {
            throw new IllegalArgumentException(where + ": batch mismatch: source positions have " + srcPos.length
                    + " rows, base positions " + site.basePositions().length);
        }
        for (int b = 0; b < srcPos.length; b++) {
            if (srcPos[b].length != site.basePositions()[b].length) {
                throw new IllegalArgumentException(where + ": example " + b + " pairs " + site.basePositions()[b].length
                        + " base positions with " + srcPos[b].length + " source positions; they must pair one to one");
            }
        }
        INDArray values;
        if (site.source() instanceof Source.Run r) {
            Batch sb = model.complete(r.batch());
            if (sb.size() != base.size()) {
                throw new IllegalArgumentException(where + ": batch mismatch: the source batch has " + sb.size()
                        + " examples, the base batch " + base.size());
            }
            checkPositions(srcPos, sb, "source", false, where);
            values = sourceRuns.get(r.batch()).get(point.name());
        } else {
            values = ((Source.Cached) site.source()).values();
            if (values.rank() != 3 || values.size(0) != base.size() || values.size(2) != width) {
                throw new IllegalArgumentException(where + ": source/base shape mismatch: source values have shape "
                        + Arrays.toString(values.shape()) + ", expected [" + base.size() + ", seq, " + width + "]");
            }
            for (int b = 0; b < srcPos.length; b++) {
                for (int p : srcPos[b]) {
                    if (p < 0 || p >= values.size(1)) {
                        throw new IllegalArgumentException(where + ": source position " + p + " of example " + b
                                + " is out of range (source sequence length " + values.size(1) + ")");
                    }
                }
            }
        }
        return values;
    }

    /** [b, s, 1] true at the selected positions of each example. */
    static INDArray positionMask(int[][] positions, Batch batch) {
        boolean[][][] m = new boolean[batch.size()][batch.seqLen()][1];
        for (int b = 0; b < positions.length; b++) {
            for (int p : positions[b]) {
                m[b][p][0] = true;
            }
        }
        return Nd4j.createFromArray(m);
    }

    /** Source rows moved to the base positions they pair with: [b, base seq, w] (zeros elsewhere, never read). */
    static INDArray aligned(INDArray source, int[][] basePos, int[][] srcPos, int baseLen) {
        int batch = (int) source.size(0);
        int srcLen = (int) source.size(1);
        int w = (int) source.size(2);
        float[] src = source.castTo(DataType.FLOAT).dup('c').data().asFloat();
        float[] out = new float[batch * baseLen * w];
        for (int b = 0; b < basePos.length; b++) {
            for (int i = 0; i < basePos[b].length; i++) {
                System.arraycopy(src, (b * srcLen + srcPos[b][i]) * w, out, (b * baseLen + basePos[b][i]) * w, w);
            }
        }
        return Nd4j.create(out, new long[] {batch, baseLen, w}, 'c');
    }

    /** (example, position) pairs in row-major order: the GatherND index of a collect. */
    static INDArray indexPairs(int[][] positions) {
        int n = Arrays.stream(positions).mapToInt(r -> r.length).sum();
        long[][] idx = new long[Math.max(n, 0)][2];
        int k = 0;
        for (int b = 0; b < positions.length; b++) {
            for (int p : positions[b]) {
                idx[k][0] = b;
                idx[k][1] = p;
                k++;
            }
        }
        return n == 0 ? Nd4j.zeros(DataType.LONG, 0, 2) : Nd4j.createFromArray(idx);
    }

    private static void splice(OnnxGraph g, Prepared p) {
        Intervention iv = p.site.intervention();
        String ns = p.ns;
        if (p.form == Form.COLLECT) {
            g.append(ns, b -> {
                String idx = b.input(ns + ".base_index", ElemTypes.INT64, -1, 2);
                b.input(ns + ".feature_mask", ElemTypes.BOOL, p.width);
                b.opTo(ns + ".collected", "GatherND", List.of(p.point.tensor(), idx));
                b.expose(ns + ".collected");
            });
            return;
        }
        if (p.form == Form.ROWS) {
            spliceRows(g, p);
            return;
        }
        if (p.form == Form.EVERY) {
            g.splice(p.point.tensor(), ns, (SubgraphBuilder b, String original) -> iv.emit(b, original,
                    iv.needsSource() ? b.input(ns + ".source", ElemTypes.FLOAT, -1, -1, p.width) : null,
                    formulaInputs(b, p)));
            return;
        }
        // dense: the formula runs on the whole [b, s, w] tensor and Where keeps it only at the selected positions
        // and features, so unselected values pass through bitwise
        g.splice(p.point.tensor(), ns, (SubgraphBuilder b, String original) -> {
            String positions = b.input(ns + ".position_mask", ElemTypes.BOOL, -1, -1, 1);
            String features = b.input(ns + ".feature_mask", ElemTypes.BOOL, p.width);
            String s = iv.needsSource() ? b.input(ns + ".source", ElemTypes.FLOAT, -1, -1, p.width) : null;
            String rows = iv.emit(b, original, s, formulaInputs(b, p));
            return b.op("Where", List.of(b.op("And", List.of(positions, features)), rows, original));
        });
    }

    /**
     * The selected rows of the [b·s, w] view, the formula on them alone, scattered back in place: unselected values
     * pass through bitwise, as in the dense form (Gather and ScatterND have gradient rules at every opset; GatherND's
     * needs opset 16).
     */
    private static void spliceRows(OnnxGraph g, Prepared p) {
        String ns = p.ns;
        g.splice(p.point.tensor(), ns, (SubgraphBuilder b, String original) -> {
            String rows = b.input(ns + ".rows", ElemTypes.INT64, -1);
            String features = b.input(ns + ".feature_mask", ElemTypes.BOOL, p.width);
            String flat = b.op("Reshape", List.of(original, b.constantInts(new long[] {-1, p.width}, 2)));
            String selected = b.op("Gather", List.of(flat, rows), dev.jreft.hooks.graph.Attr.i("axis", 0));
            String edited = p.site.intervention().emit(b, selected, null, formulaInputs(b, p));
            String kept = b.op("Where", List.of(features, edited, selected));
            String index = b.op("Reshape", List.of(rows, b.constantInts(new long[] {-1, 1}, 2)));
            String scattered = b.op("ScatterND", List.of(flat, index, kept));
            return b.op("Reshape", List.of(scattered, b.op("Shape", List.of(original))));
        });
    }

    /** Declares the site's parameter and non-trained inputs; returns the formula's name -> graph input map. */
    private static Map<String, String> formulaInputs(SubgraphBuilder b, Prepared p) {
        p.declaredShapes.forEach((name, shape) -> b.input(name, ElemTypes.FLOAT, shape));
        Map<String, String> inputs = new LinkedHashMap<>(p.paramInputs);
        inputs.putAll(p.otherInputs);
        return inputs;
    }

    private static INDArray selectFeatures(INDArray rows, boolean[] mask) {
        List<Long> cols = new ArrayList<>();
        for (int i = 0; i < mask.length; i++) {
            if (mask[i]) {
                cols.add((long) i);
            }
        }
        if (cols.size() == mask.length) {
            return rows;
        }
        return rows.get(NDArrayIndex.all(), NDArrayIndex.indices(cols.stream().mapToLong(Long::longValue).toArray()));
    }
}
