package dev.jreft.interventions;

import dev.jreft.hooks.graph.SubgraphBuilder;

import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An intervention rewrites the selected positions of a hook tensor. The splicer hands {@link #emit} the whole base
 * tensor {@code h} ([batch, seq, width]) and, for interventions that read a source, the source values {@code s}
 * aligned to the base positions; {@link #emit} returns the tensor of new values. The splicer then keeps the new
 * values only at the selected positions and on the unit's features (a head's slice, a subspace):
 * {@code Where(position mask AND feature mask, result, h)}, so everything else stays exactly unchanged.
 */
public interface Intervention {
    /** Stable name used in configs and checkpoints (never a Java class name). */
    String type();

    /**
     * What makes two instances build different graphs (for example a DAS subspace baked in as a constant);
     * parameters, non-trained inputs and positions are graph inputs and never part of it.
     */
    default String structureKey() {
        return type();
    }

    /** True when the formula reads source values {@code s}. */
    boolean needsSource();

    /**
     * True when the formula maps each row (the last axis) on its own, so it may be handed the selected rows alone,
     * {@code h} [n, width] (see {@code IntervenableModel.Form#ROWS}); false (the default) hands it the whole
     * [batch, seq, width] tensor.
     */
    default boolean rowwise() {
        return false;
    }

    /**
     * The trained parameters for a hook of the given width, with their shapes, initialisation and constraints; fed
     * as graph inputs and differentiated. Throws a {@link dev.jreft.hooks.io.ConfigException} when the method's
     * settings (a rank, a subspace) do not fit the width.
     */
    default List<Parameter> parameters(long width) {
        return List.of();
    }

    /** Names and shapes of {@link #parameters}, in their order. */
    default Map<String, long[]> parameterShapes(long width) {
        Map<String, long[]> m = new LinkedHashMap<>();
        parameters(width).forEach(p -> m.put(p.name(), p.shape()));
        return m;
    }

    /**
     * Non-trained inputs the formula reads beside its parameters (a dropout mask, a temperature): names and shapes
     * for a hook of the given width, a dim of -1 taking any size (declared symbolic). A site feeds them through its
     * params map like parameters; they are never differentiated. Names must differ from the parameters'.
     */
    default Map<String, long[]> inputShapes(long width) {
        return Map.of();
    }

    /**
     * The value fed for non-trained input {@code name} when a site gives none: a tensor of that shape filled with
     * this number, each -1 dim of size 1 (so it broadcasts); null when the site must give it.
     */
    default Float inputDefault(String name) {
        return null;
    }

    /**
     * Checks a fed input's value before the graph runs (a temperature must be positive: a division by zero turns the
     * output into NaN); throws an {@link IllegalArgumentException} saying what is valid.
     */
    default void checkInput(String name, org.nd4j.linalg.api.ndarray.INDArray value) {
    }

    /**
     * Emits the formula. {@code h} and {@code s} are [batch, seq, width] tensors ({@code s} is null without a
     * source); {@code params} maps parameter and non-trained input names to graph input names.
     */
    String emit(SubgraphBuilder b, String h, String s, Map<String, String> params);

    /**
     * The weight [out, in] and bias of the linear module whose output ({@code atOutput}) or sole input is this
     * hook, with the intervention baked in; empty when it cannot be written as a weight (the default: an
     * intervention at positions acts on activations).
     */
    default java.util.Optional<MergedWeights> mergeInto(boolean atOutput, INDArray weight, INDArray bias,
                                                        Map<String, INDArray> params) {
        return java.util.Optional.empty();
    }
}
