package dev.jreft.interventions;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.Map;

/**
 * An intervention rewrites the selected rows of a hook tensor. The splicer gathers the base rows {@code h}
 * ([n, width], one per selected (example, position)) and, for interventions that read a source, the paired source
 * rows {@code s}; {@link #emit} returns the tensor of new rows. The splicer then keeps the new values only on the
 * unit's features (a head's slice, a subspace) and scatters them back, so positions that are not selected stay
 * exactly unchanged.
 */
public interface Intervention {
    /** Stable name used in configs and checkpoints (never a Java class name). */
    String type();

    /**
     * What makes two instances build different graphs (for example a DAS subspace baked in as a constant);
     * parameters and positions are graph inputs and never part of it.
     */
    default String structureKey() {
        return type();
    }

    /** True when the formula reads source values {@code s}. */
    boolean needsSource();

    /** Parameter names and shapes for a hook of the given width; fed as graph inputs. */
    default Map<String, long[]> parameterShapes(long width) {
        return Map.of();
    }

    /**
     * Emits the formula. {@code h} and {@code s} are [n, width] tensors ({@code s} is null without a source);
     * {@code params} maps parameter names to graph input names.
     */
    String emit(SubgraphBuilder b, String h, String s, Map<String, String> params);
}
