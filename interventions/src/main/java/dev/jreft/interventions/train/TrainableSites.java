package dev.jreft.interventions.train;

import dev.jreft.hooks.runtime.Batch;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.ModuleSite;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * What a method trains, as sites of one batch: module edits (LoRA ...) and hook interventions (ReFT, adapters, IA3)
 * with parameters named {@code <prefix>.<parameter>}. The trainer only sees the declarations: it draws fresh values
 * from their inits and keeps their constraints, whatever the method.
 */
interface TrainableSites {
    /** Every trained parameter by its prefixed name ({@code site0.R}, {@code <module path>.A}) with its declaration. */
    Map<String, Parameter> declarations();

    /** The module edits for this batch with the current values (none by default). */
    default List<ModuleSite> edits(Batch batch, Map<String, INDArray> params) {
        return List.of();
    }

    /** The hook interventions for this batch with the current values (none by default). */
    default List<InterventionSite> sites(Batch batch, Map<String, INDArray> params) {
        return List.of();
    }

    /** The model these sites run on: {@code model} itself, or a variant that feeds trained weights as inputs. */
    default dev.jreft.hooks.runtime.HookedModel runOn(dev.jreft.hooks.runtime.HookedModel model) {
        return model;
    }

    /** Graph inputs of {@link #runOn} to differentiate beside the sites' parameters (trained weights). */
    default List<String> weightSources() {
        return List.of();
    }

    /**
     * Per hook site of {@link #sites}, in order, the positions it acts at as a rule an exported graph can compute
     * from the attention mask: first n and last m real tokens, or null for every position.
     */
    default List<PositionSpec> exportPositions() {
        return List.of();
    }

    /** Training mode: fresh dropout masks from {@code random}; null switches back to evaluation. */
    default void training(Random random) {
    }

    /** Prefixed gradients, in the order of {@link #edits} and {@link #sites}. */
    Map<String, INDArray> collect(IntervenableModel.Gradients g);

    default boolean isEmpty() {
        return declarations().isEmpty();
    }

    /** Fresh parameters, each drawn as its method declares it, in declaration order. */
    default void initialise(Map<String, INDArray> params, Random random) {
        declarations().forEach((name, p) -> params.put(name, p.init().draw(p.shape(), random)));
    }

    /** Check, clip, update, retract: the common tail of an optimisation step. */
    default void apply(Map<String, INDArray> params, Map<String, INDArray> grads, double loss, Optimizer opt,
                       double lr, double maxGradNorm, int step) {
        // one pass over the gradients: the clipping norm; only a non-finite one is searched for its tensor
        if (!Double.isFinite(loss) || !Double.isFinite(clip(grads, maxGradNorm))) {
            NonFiniteException.check(step, loss, grads); // names the loss or the gradient, and throws
        }
        opt.step(params, grads, lr);
        NonFiniteException.checkParameters(step, params);
        // constrained parameters (LoReFT's R: orthonormal rows) go back onto their manifold after every step
        declarations().forEach((name, p) -> p.constraint().retract(params.get(name)));
        // the gradients are off-heap arrays the GC would free only under heap pressure: full finetuning's 90 MB a
        // step would pile up to gigabytes, so they go now
        grads.values().forEach(g -> {
            if (g.closeable()) {
                g.close();
            }
        });
    }

    /**
     * Scales all gradients so their global L2 norm is at most {@code max} (no-op for max ≤ 0); returns the norm. A
     * NaN or infinite norm leaves the gradients as they are, for the caller to report.
     */
    static double clip(Map<String, INDArray> grads, double max) {
        double sq = 0;
        for (INDArray g : grads.values()) {
            double n = g.norm2Number().doubleValue();
            sq += n * n;
        }
        double norm = Math.sqrt(sq);
        if (max > 0 && Double.isFinite(norm) && norm > max) {
            grads.values().forEach(g -> g.muli(max / norm));
        }
        return norm;
    }

    /** Gradients of the sites {@code prefixes} name, in their order, under their prefixed names; then the extras. */
    static Map<String, INDArray> prefixed(List<String> prefixes, List<Map<String, INDArray>> perSite,
                                          Map<String, INDArray> extra) {
        Map<String, INDArray> grads = new LinkedHashMap<>();
        for (int i = 0; i < prefixes.size(); i++) {
            String prefix = prefixes.get(i);
            perSite.get(i).forEach((k, v) -> grads.put(prefix + "." + k, v));
        }
        grads.putAll(extra);
        return grads;
    }

    /** Each site's declarations under its prefix ({@code prefixes.get(i)} holds {@code declared.get(i)}). */
    static Map<String, Parameter> prefixedDeclarations(List<String> prefixes, List<List<Parameter>> declared) {
        Map<String, Parameter> m = new LinkedHashMap<>();
        for (int i = 0; i < prefixes.size(); i++) {
            String prefix = prefixes.get(i);
            declared.get(i).forEach(p -> m.put(prefix + "." + p.name(), p));
        }
        return m;
    }

    /** {@code values} under {@code prefix.}: one site's share of the parameters. */
    static Map<String, INDArray> unprefixed(String prefix, List<Parameter> declared, Map<String, INDArray> values) {
        Map<String, INDArray> m = new LinkedHashMap<>();
        declared.forEach(p -> m.put(p.name(), values.get(prefix + "." + p.name())));
        return m;
    }
}
