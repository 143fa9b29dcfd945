package dev.jreft.training;

import dev.jreft.hooks.autodiff.LossGraphs;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.generation.Generator;
import dev.jreft.interventions.generation.InterveneOn;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.PrintStream;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A causal LM with a trained method — the ReFT family at hooks, LoRA / DoRA on its linear modules, adapters, IA3 —
 * trained with the language-model loss (pyreft's instruction-tuning setup, peft's causal-LM finetuning): mean
 * next-token cross-entropy over the tokens after each example's prompt. Works from token ids, so exports without a
 * tokenizer train too.
 */
public final class CausalLanguageModel {
    /** What is trained: any method of {@link MethodSpec}. */
    public record Config(MethodSpec method) {
        /** A ReFT method: intervention type, hooks, rank, positions, weight sharing, activation, dropout. */
        public Config(String intervention, List<String> hooks, int rank, String positions, boolean shareWeights,
                      String activation, double dropout) {
            this(new MethodSpec.Reft(intervention, hooks, rank, positions, shareWeights, activation, dropout));
        }

        /** A ReFT method with no activation and no dropout. */
        public Config(String intervention, List<String> hooks, int rank, String positions, boolean shareWeights) {
            this(intervention, hooks, rank, positions, shareWeights, "linear", 0);
        }
    }

    /** Token ids of one sequence; the loss covers the tokens from {@code promptLength} on. */
    public record TokenExample(long[] ids, int promptLength) {
        public TokenExample {
            if (ids.length < 2 || promptLength < 1 || promptLength >= ids.length) {
                throw new IllegalArgumentException("a token example needs at least 2 ids and a prompt length in [1, "
                        + (ids.length - 1) + "]; got " + ids.length + " ids, prompt " + promptLength);
            }
        }
    }

    private final HookedModel model;
    private final Config config;
    private final IntervenableModel intervenable;
    private final TrainableSites sites;
    private final Map<String, INDArray> params = new LinkedHashMap<>();
    private final String logits;

    private CausalLanguageModel(HookedModel model, Config config, long seed) {
        this.model = model;
        this.config = config;
        this.sites = config.method().sites(model);
        this.intervenable = new IntervenableModel(sites.runOn(model));
        if (sites.isEmpty()) {
            throw new IllegalArgumentException("a causal LM method needs at least one trained parameter (method "
                    + config.method().type() + ")");
        }
        sites.initialise(params, new Random(seed));
        this.logits = model.graph().outputNames().get(0);
    }

    public static CausalLanguageModel create(HookedModel model, Config config, long seed) {
        return new CausalLanguageModel(model, config, seed);
    }

    /** A model with the given trained parameters (a loaded checkpoint's), checked against what the method trains. */
    public static CausalLanguageModel withParameters(HookedModel model, Config config, Map<String, INDArray> values) {
        CausalLanguageModel fresh = create(model, config, 0);
        for (var e : fresh.params.entrySet()) {
            INDArray v = values.get(e.getKey());
            if (v == null || !java.util.Arrays.equals(v.shape(), e.getValue().shape())) {
                throw new IllegalArgumentException("parameter '" + e.getKey() + "': found " + (v == null ? "nothing"
                        : "shape " + java.util.Arrays.toString(v.shape())) + "; valid: shape "
                        + java.util.Arrays.toString(e.getValue().shape()) + " (needed: " + fresh.params.keySet() + ")");
            }
            e.getValue().assign(v);
        }
        return fresh;
    }

    public Map<String, INDArray> parameters() {
        return Collections.unmodifiableMap(params);
    }

    public HookedModel model() {
        return model;
    }

    public Config config() {
        return config;
    }

    Map<String, dev.jreft.interventions.params.Parameter> declarations() {
        return sites.declarations();
    }

    /** Right-padded batch (pad id 0) of the examples. */
    public Batch batch(List<TokenExample> examples) {
        int len = examples.stream().mapToInt(e -> e.ids().length).max().orElseThrow();
        long[][] ids = new long[examples.size()][len];
        long[][] mask = new long[examples.size()][len];
        for (int i = 0; i < ids.length; i++) {
            long[] x = examples.get(i).ids();
            System.arraycopy(x, 0, ids[i], 0, x.length);
            java.util.Arrays.fill(mask[i], 0, x.length, 1);
        }
        return model.complete(Batch.of(ids, mask));
    }

    /**
     * The batch as intervention positions see it: only the prompts' tokens are real, so {@code f1+l1} and the like
     * count from the prompt (pyreft's positions: the last prompt token, not the last token of the completion), the
     * same positions the prompt has when {@link #generate} generates after it.
     */
    static Batch prompts(List<TokenExample> examples, Batch batch) {
        INDArray mask = Nd4j.zeros(DataType.LONG, batch.size(), batch.seqLen());
        for (int i = 0; i < examples.size(); i++) {
            for (int t = 0; t < examples.get(i).promptLength(); t++) {
                mask.putScalar(i, t, 1);
            }
        }
        return batch.with(Batch.ATTENTION_MASK, mask);
    }

    /**
     * Generates after {@code prompts} (one batch; left-padded when of unequal length) with the trained method: its module edits on
     * every pass, its interventions at their positions in the prompt (as in training) and / or each generated token,
     * as {@code on} says. On an export with past inputs, decoding reuses the KV cache.
     */
    public Generator.Generation generate(Batch prompts, InterveneOn on, Generator.Settings settings,
                                         Generator.Listener listener) {
        return new Generator(intervenable).generate(prompts, sites.modelEdits(prompts, params),
                sites.sites(prompts, params), on, settings, listener);
    }

    /** Loss weights [b, s] (1 where position t predicts a response token t+1) and targets [b, s, 1]. */
    static INDArray[] targets(List<TokenExample> examples, int len) {
        INDArray w = Nd4j.zeros(DataType.FLOAT, examples.size(), len);
        INDArray t = Nd4j.zeros(DataType.LONG, examples.size(), len, 1);
        for (int b = 0; b < examples.size(); b++) {
            long[] ids = examples.get(b).ids();
            for (int pos = examples.get(b).promptLength() - 1; pos < ids.length - 1; pos++) {
                w.putScalar(b, pos, 1);
                t.putScalar(new long[] {b, pos, 0}, ids[pos + 1]);
            }
        }
        return new INDArray[] {w, t};
    }

    /** Mean next-token cross-entropy of the response tokens (forward only). */
    public double loss(List<TokenExample> examples) {
        Batch b = batch(examples);
        INDArray out = intervenable.run(b, sites.modelEdits(b, params), sites.sites(prompts(examples, b), params),
                List.of()).output(logits);
        INDArray[] wt = targets(examples, b.seqLen());
        double total = 0;
        double count = 0;
        for (int i = 0; i < out.size(0); i++) {
            for (int pos = 0; pos < out.size(1); pos++) {
                if (wt[0].getDouble(i, pos) == 0) {
                    continue;
                }
                INDArray row = out.get(org.nd4j.linalg.indexing.NDArrayIndex.point(i),
                        org.nd4j.linalg.indexing.NDArrayIndex.point(pos)).castTo(DataType.DOUBLE);
                double max = row.maxNumber().doubleValue();
                double lse = max + Math.log(org.nd4j.linalg.ops.transforms.Transforms.exp(row.sub(max), false)
                        .sumNumber().doubleValue());
                total += lse - row.getDouble(wt[1].getLong(i, pos, 0));
                count++;
            }
        }
        return total / count;
    }

    /** One optimisation step on {@code examples}; returns the batch loss. */
    public double step(List<TokenExample> examples, Optimizer opt, double lr, double maxGradNorm, int stepIndex) {
        Batch b = batch(examples);
        INDArray[] wt = targets(examples, b.seqLen());
        Map<String, INDArray> lossFeeds = new LinkedHashMap<>();
        lossFeeds.put(LossGraphs.WEIGHTS, wt[0]);
        lossFeeds.put(LossGraphs.TARGETS, wt[1]);
        IntervenableModel.Gradients g = intervenable.gradients(b, sites.modelEdits(b, params),
                sites.sites(prompts(examples, b), params),
                "lm", gr -> LossGraphs.tokenCrossEntropy(gr, logits), lossFeeds, sites.weightSources());
        sites.apply(params, sites.collect(g), g.loss(), opt, lr, maxGradNorm, stepIndex);
        return g.loss();
    }

    /** Trains for {@code args.epochs()} over shuffled batches (the last partial batch is kept). */
    public TrainingResult train(List<TokenExample> train, TrainingArguments args, PrintStream out) {
        // no dev set: the score (the negated loss, higher is better) is never asked for
        return Trainer.train(Trainer.objective(sites, params, this::step, (dev, a) -> -loss(dev)), train, List.of(),
                args, out, false);
    }
}
