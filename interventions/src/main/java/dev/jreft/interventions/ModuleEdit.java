package dev.jreft.interventions;

import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * A graph edit at a linear module: it reads what the module takes ({@code x}, [.., in]) and rewrites what the
 * module hands on ({@code y}, [.., out]) at every position, as peft's tuner layers wrap a Linear. Unlike an
 * {@link Intervention} it has no positions or units: it is part of the model while it is active, so hook
 * interventions and read hooks see the edited model.
 */
public interface ModuleEdit {
    /** Stable name used in configs and checkpoints. */
    String type();

    /** What makes two instances build different graphs beyond their declared shapes (none by default). */
    default String structureKey() {
        return type();
    }

    /**
     * The trained parameters for module {@code m}. {@code weight} gives its frozen weight [out, in] for an init that
     * reads it (DoRA's magnitude starts at its row norms); it is read only when a fresh value is drawn, since the
     * declarations are asked for at every step.
     */
    List<Parameter> parameters(LinearModule m, java.util.function.Supplier<INDArray> weight);

    /** Non-trained inputs (a dropout mask, a scale) with their shapes; a dim of -1 takes any size. */
    default Map<String, long[]> inputShapes(LinearModule m) {
        return Map.of();
    }

    /** The value a non-trained input gets when the site feeds none (filled to its shape), or null when it must. */
    default Float inputDefault(String name) {
        return null;
    }

    /**
     * Non-trained inputs that are detached copies of parameters, by input name: fed the parameter's current value
     * and never differentiated (torch's {@code detach()}: DoRA's weight norm).
     */
    default Map<String, String> detachedCopies() {
        return Map.of();
    }

    /**
     * Emits {@code y'}. {@code inputs} maps parameter and non-trained input names to graph tensors; the module's
     * weight and bias initializers ({@link LinearModule#weight()}, {@link LinearModule#bias()}) may be read as
     * frozen tensors.
     */
    String emit(SubgraphBuilder b, LinearModule m, String x, String y, Map<String, String> inputs);

    /**
     * The module's weight [out, in] and bias with this edit baked in (peft's {@code merge_and_unload}), so the plain
     * graph computes the edited module; empty when the edit cannot be written as a weight.
     */
    default java.util.Optional<MergedWeights> merge(LinearModule m, INDArray weight, INDArray bias,
                                                    Map<String, INDArray> params) {
        return java.util.Optional.empty();
    }
}
