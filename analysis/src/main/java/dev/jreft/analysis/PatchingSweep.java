package dev.jreft.analysis;

import dev.jreft.hooks.runtime.ActivationCache;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.Source;
import dev.jreft.interventions.statics.VanillaInterchange;
import dev.jreft.training.ClassificationHead;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;

/**
 * Activation patching across layers: cache a source sentence's block outputs in one run, then for each layer
 * interchange the base sentence's block output with the source's at the chosen positions, and measure how far the
 * base's final embedding moves (cosine distance to its clean embedding and to the source's). With
 * {@link Positions#DIFFERING} only the token positions where the two sentences differ are patched (causal
 * tracing: the effect fades at later layers once the information has spread to other positions).
 */
public final class PatchingSweep {
    /** One layer's result. */
    public record LayerEffect(int layer, double distanceFromBase, double distanceToSource, int[] positions) {
    }

    /** Which positions to patch. */
    public enum Positions { ALL_SHARED, DIFFERING }

    private PatchingSweep() {
    }

    /** Sentence embedding as sentence-transformers computes it for MiniLM: the mean over real tokens. */
    static INDArray embedding(INDArray hidden, Batch batch) {
        return ClassificationHead.pool(hidden, batch, ClassificationHead.Pooling.MEAN);
    }

    /** Cosine distance between the clean embeddings of two texts. */
    public static double embeddingDistance(HookedModel model, String a, String b) {
        Batch x = model.tokenize(List.of(a));
        Batch y = model.tokenize(List.of(b));
        String out = model.graph().outputNames().get(0);
        return Embeddings.cosineDistance(embedding(model.run(x).get(out), x).getRow(0),
                embedding(model.run(y).get(out), y).getRow(0));
    }

    public static List<LayerEffect> blockOutputInterchange(HookedModel model, String baseText, String sourceText,
                                                           Positions which) {
        Batch base = model.tokenize(List.of(baseText));
        Batch source = model.tokenize(List.of(sourceText));
        int layers = model.hooks().config().layers();
        List<String> hooks = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            hooks.add("blocks." + l + ".block_output");
        }
        String output = model.graph().outputNames().get(0);
        ActivationCache sourceCache = model.runWithCache(source, hooks);
        INDArray sourceEmb = embedding(sourceCache.output(output), source);
        INDArray baseEmb = embedding(model.run(base).get(output), base);
        int shared = Math.min(base.lastReal(0), source.lastReal(0)) + 1;
        INDArray baseIds = base.inputs().get(Batch.INPUT_IDS);
        INDArray sourceIds = source.inputs().get(Batch.INPUT_IDS);
        int[] chosen = java.util.stream.IntStream.range(0, shared).filter(t -> which == Positions.ALL_SHARED
                || baseIds.getLong(0, t) != sourceIds.getLong(0, t)).toArray();
        if (chosen.length == 0) {
            throw new IllegalArgumentException("the two sentences have the same tokens at every shared position;"
                    + " nothing to patch");
        }
        int[][] positions = {chosen};
        IntervenableModel im = new IntervenableModel(model);
        List<LayerEffect> effects = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            String hook = hooks.get(l);
            INDArray patched = im.run(base, List.of(InterventionSite.at(hook, new VanillaInterchange())
                    .positions(positions).source(Source.cached(sourceCache.get(hook)), positions).build()))
                    .output(output);
            INDArray emb = embedding(patched, base);
            effects.add(new LayerEffect(l, Embeddings.cosineDistance(emb.getRow(0), baseEmb.getRow(0)),
                    Embeddings.cosineDistance(emb.getRow(0), sourceEmb.getRow(0)), chosen));
        }
        return effects;
    }
}
