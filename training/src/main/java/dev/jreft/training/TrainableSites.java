package dev.jreft.training;

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

    /** The sequence edit (a soft prompt) with the current values, or none (the default). */
    default List<dev.jreft.interventions.SequenceSite> sequence(Map<String, INDArray> params) {
        return List.of();
    }

    /** Virtual tokens the sequence edit puts in front of every example (0 without one). */
    default int virtualTokens() {
        return 0;
    }

    /** What runs before the hook sites: the sequence edit, then the module edits (the order of the gradients). */
    default List<dev.jreft.interventions.ModelEdit> modelEdits(Batch batch, Map<String, INDArray> params) {
        List<dev.jreft.interventions.ModelEdit> all = new java.util.ArrayList<>(sequence(params));
        all.addAll(edits(batch, params));
        return all;
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

    /** The common tail of an optimisation step ({@link ParameterUpdate#apply}) over these sites' declarations. */
    default void apply(Map<String, INDArray> params, Map<String, INDArray> grads, double loss, Optimizer opt,
                       double lr, double maxGradNorm, int step) {
        ParameterUpdate.apply(declarations(), params, grads, loss, opt, lr, maxGradNorm, step);
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
