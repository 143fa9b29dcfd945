package dev.jreft.training;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.params.Init;
import dev.jreft.interventions.params.Parameter;
import dev.jreft.training.data.LabelledText;
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
 * A frozen encoder with ReFT interventions at some hooks and a linear head, trained together for classification
 * (pyreft's ReFT + classification head setup). Parameters are named {@code site<k>.<R|W|b>} and
 * {@code head.<W|b>}; all of them are graph inputs, so training never rebuilds a session for new values.
 */
public final class ReftClassifier {
    /**
     * What is trained: a method (the ReFT family at hooks, LoRA / DoRA on linear modules, adapters, IA3) and the
     * linear head over the pooled last hidden state.
     */
    public record Config(MethodSpec method, int classes, ClassificationHead.Pooling pooling) {
        /** A ReFT method: type ({@code loreft}, {@code noreft} ...), hooks, rank, positions, weight sharing. */
        public Config(String intervention, List<String> hooks, int rank, String positions, boolean shareWeights,
                      int classes, ClassificationHead.Pooling pooling, String activation, double dropout) {
            this(new MethodSpec.Reft(intervention, hooks, rank, positions, shareWeights, activation, dropout),
                    classes, pooling);
        }

        /** A ReFT method with no activation and no dropout (the LoReFT of the paper). */
        public Config(String intervention, List<String> hooks, int rank, String positions, boolean shareWeights,
                      int classes, ClassificationHead.Pooling pooling) {
            this(intervention, hooks, rank, positions, shareWeights, classes, pooling, "linear", 0);
        }

        /** The ReFT settings; an error for another method. */
        public MethodSpec.Reft reft() {
            if (method instanceof MethodSpec.Reft r) {
                return r;
            }
            throw new IllegalStateException("method " + method.type() + " is not a ReFT method");
        }

        public String intervention() {
            return method.type();
        }
    }

    private final HookedModel model;
    private final IntervenableModel intervenable;
    private final Config config;
    private final TrainableSites sites;
    private final Map<String, INDArray> params;
    private final long width;

    private ReftClassifier(HookedModel model, Config config, Map<String, INDArray> params) {
        this.model = model;
        this.config = config;
        this.width = model.hooks().config().hidden();
        this.sites = config.method().sites(model);
        this.intervenable = new IntervenableModel(sites.runOn(model));
        this.params = params;
    }

    /** Fresh parameters: the sites' as their intervention declares them; head uniform ±1/√d, bias 0. */
    public static ReftClassifier create(HookedModel model, Config config, long seed) {
        ReftClassifier c = new ReftClassifier(model, config, new LinkedHashMap<>());
        Random random = new Random(seed);
        long d = c.width;
        c.sites.initialise(c.params, random);
        c.params.put(ClassificationHead.W, Init.uniform(1 / Math.sqrt(d)).draw(new long[] {d, config.classes()},
                random));
        c.params.put(ClassificationHead.B, Nd4j.zeros(DataType.FLOAT, config.classes()));
        return c;
    }

    /** A classifier with given parameters (for example from a checkpoint); names and shapes are checked. */
    public static ReftClassifier withParameters(HookedModel model, Config config, Map<String, INDArray> values) {
        ReftClassifier fresh = create(model, config, 0);
        for (var e : fresh.params.entrySet()) {
            INDArray v = values.get(e.getKey());
            if (v == null) {
                throw new IllegalArgumentException("parameter '" + e.getKey() + "' is missing (needed: "
                        + fresh.params.keySet() + ")");
            }
            if (!java.util.Arrays.equals(v.shape(), e.getValue().shape())) {
                throw new IllegalArgumentException("parameter '" + e.getKey() + "' has shape "
                        + java.util.Arrays.toString(v.shape()) + ", expected " + java.util.Arrays.toString(
                        e.getValue().shape()));
            }
            e.getValue().assign(v.castTo(DataType.FLOAT)); // in place: trained weights are live graph feeds
        }
        return fresh;
    }

    public Config config() {
        return config;
    }

    public HookedModel model() {
        return model;
    }

    /** The live parameters, by name (updated in place by training). */
    /** The intervention parameters' declarations by prefixed name (the head's parameters are not among them). */
    Map<String, Parameter> declarations() {
        return sites.declarations();
    }

    public Map<String, INDArray> parameters() {
        return Collections.unmodifiableMap(params);
    }

    /** Trainable scalars: interventions and head. */
    public long trainableParameters() {
        return params.values().stream().mapToLong(INDArray::length).sum();
    }

    /** Trainable scalars of the interventions alone (without the head). */
    public long interventionParameters() {
        return params.entrySet().stream().filter(e -> !e.getKey().startsWith("head."))
                .mapToLong(e -> e.getValue().length()).sum();
    }

    public Batch encode(List<String> texts, int maxLength) {
        return model.complete(model.tokenizer().orElseThrow(() -> new IllegalStateException(
                "the model has no tokenizer")).encode(texts, maxLength, 16));
    }

    /** The interventions for this batch, with the current parameter values. */
    public List<InterventionSite> sites(Batch batch) {
        return sites.sites(batch, params);
    }

    /** What the loss is differentiated with respect to beside the sites' parameters: the head and trained weights. */
    private List<String> sources() {
        List<String> s = new ArrayList<>(List.of(ClassificationHead.W, ClassificationHead.B));
        s.addAll(sites.weightSources());
        return s;
    }

    /** The intervened graph for an export, with one example's feeds, and each hook site's position rule. */
    IntervenableModel.ExportGraph exportGraph() {
        Batch example = exampleBatch();
        return intervenable.exportGraph(example, sites.modelEdits(example, params), sites.sites(example, params));
    }

    List<PositionSpec> exportPositions() {
        return sites.exportPositions();
    }

    /** Trained weights of the model itself (BitFit, full finetuning) by initializer name; empty for other methods. */
    Map<String, INDArray> weightsForExport() {
        return sites.runOn(model).weights();
    }

    /** The module edits with the current values, as evaluation runs them (for a merge or an export). */
    List<dev.jreft.interventions.ModuleSite> editsForExport() {
        return sites.edits(null, params);
    }

    /** The hook sites' interventions and values on a one-example batch (an export reads them, not the positions). */
    List<InterventionSite> sitesForExport() {
        return sites.sites(exampleBatch(), params);
    }

    private Batch exampleBatch() {
        return encode(List.of("an example"), 16);
    }

    /** Class logits [b, C] (forward only). */
    public INDArray logits(Batch batch) {
        String out = model.graph().outputNames().get(0);
        INDArray hidden = sites.isEmpty() ? model.run(batch).get(out)
                : intervenable.run(batch, sites.modelEdits(batch, params), sites(batch), List.of()).output(out);
        return ClassificationHead.logits(ClassificationHead.pool(hidden, batch, config.pooling()),
                params.get(ClassificationHead.W), params.get(ClassificationHead.B));
    }

    /** Accuracy on {@code data}. */
    public double accuracy(List<LabelledText> data, int batchSize, int maxLength) {
        return (double) correct(data, batchSize, maxLength) / data.size();
    }

    /** How many of {@code data} are classified right. */
    public int correct(List<LabelledText> data, int batchSize, int maxLength) {
        int correct = 0;
        for (int i = 0; i < data.size(); i += batchSize) {
            List<LabelledText> chunk = data.subList(i, Math.min(data.size(), i + batchSize));
            INDArray logits = logits(encode(chunk.stream().map(LabelledText::text).toList(), maxLength));
            INDArray pred = logits.argMax(1);
            for (int j = 0; j < chunk.size(); j++) {
                if (pred.getInt(j) == chunk.get(j).label()) {
                    correct++;
                }
            }
        }
        return correct;
    }

    /** Loss and gradients of every parameter on one batch. */
    public IntervenableModel.Gradients gradients(Batch batch, int[] labels) {
        long[][] l = new long[labels.length][1];
        for (int i = 0; i < labels.length; i++) {
            l[i][0] = labels[i];
        }
        Map<String, INDArray> lossFeeds = new LinkedHashMap<>();
        lossFeeds.put(ClassificationHead.POOL_WEIGHTS, ClassificationHead.poolWeights(batch, config.pooling()));
        lossFeeds.put(LossGraphs.LABELS, Nd4j.createFromArray(l));
        lossFeeds.put(ClassificationHead.W, params.get(ClassificationHead.W));
        lossFeeds.put(ClassificationHead.B, params.get(ClassificationHead.B));
        String out = model.graph().outputNames().get(0);
        return intervenable.gradients(batch, sites.modelEdits(batch, params), sites(batch), "classify:" + config.classes(),
                g -> ClassificationHead.appendLoss(g, out, width, config.classes()), lossFeeds, sources());
    }

    /** Trains on {@code train}, evaluating on {@code dev}; keeps the best dev parameters. Progress goes to {@code out}. */
    public TrainingResult train(List<LabelledText> train, List<LabelledText> dev, TrainingArguments args,
                                PrintStream out) {
        return train(train, dev, args, out, Replicas.ALONE);
    }

    /**
     * Trains as above as one of {@code replicas}: every worker walks the same batches and steps on its share of
     * each, with the whole batch's gradient ({@link Replicas#meanOverBatch}); dev accuracy is counted over the
     * workers' shares of {@code dev}. Dropout masks are drawn per worker (seeded by its rank beside the seed).
     */
    public TrainingResult train(List<LabelledText> train, List<LabelledText> dev, TrainingArguments args,
                                PrintStream out, Replicas replicas) {
        Replicas.checkBatch(args.batchSize(), replicas.count());
        long positions = model.inputLimits().maxPositions().orElse(Long.MAX_VALUE);
        if (sites.virtualTokens() + (long) args.maxLength() > positions) { // before the first step, not at a long batch
            throw new dev.jreft.hooks.io.ConfigException("training.max_length", args.maxLength(), "at most "
                    + (positions - sites.virtualTokens()) + ": the model's " + positions + " positions less the "
                    + sites.virtualTokens() + " virtual tokens");
        }
        Trainer.Step<LabelledText> step = (chunk, opt, lr, maxGradNorm, index) -> {
            List<LabelledText> mine = replicas.share(chunk);
            return step(encode(mine.stream().map(LabelledText::text).toList(), args.maxLength()),
                    mine.stream().mapToInt(LabelledText::label).toArray(), opt, lr, maxGradNorm, index,
                    replicas, chunk.size());
        };
        java.util.function.BiFunction<List<LabelledText>, TrainingArguments, Double> score = (examples, a) ->
                (double) replicas.total(correct(replicas.share(examples), 32, a.maxLength())) / examples.size();
        // each worker its own dropout masks: the same seed on every worker would repeat one mask per share
        Trainer.Objective<LabelledText> objective = Trainer.objective(sites, params, step, score, random ->
                replicas.count() == 1 ? random : new Random(random.nextLong() ^ (0x9e3779b97f4a7c15L
                        * (replicas.rank() + 1))));
        // the last partial batch is dropped (shapes stay bucketed)
        return Trainer.train(objective, train, dev, args, out, true);
    }

    /** Replaces every parameter's value in place with {@code values}' (the result of a data-parallel run). */
    public void assign(Map<String, INDArray> values) {
        ReftClassifier checked = withParameters(model, config, values); // names and shapes
        checked.params.forEach((name, v) -> params.get(name).assign(v));
    }

    /**
     * One optimisation step on a batch: gradients of every parameter, a NaN/Inf check, clipping to
     * {@code maxGradNorm}, the optimiser update with {@code lr}, and LoReFT's retraction. Returns the batch loss.
     */
    public double step(Batch batch, int[] labels, Optimizer opt, double lr, double maxGradNorm, int stepIndex) {
        return step(batch, labels, opt, lr, maxGradNorm, stepIndex, Replicas.ALONE, labels.length);
    }

    /**
     * The step as one of {@code replicas}: {@code batch} is this worker's share of a global batch of
     * {@code globalSize} rows, and the update applied is the whole batch's. Returns the whole batch's loss.
     */
    private double step(Batch batch, int[] labels, Optimizer opt, double lr, double maxGradNorm, int stepIndex,
                        Replicas replicas, int globalSize) {
        IntervenableModel.Gradients g = gradients(batch, labels);
        Map<String, INDArray> grads = sites.collect(g);
        double loss = replicas.meanOverBatch(grads, g.loss(), labels.length, globalSize);
        sites.apply(params, grads, loss, opt, lr, maxGradNorm, stepIndex);
        return loss;
    }

}
