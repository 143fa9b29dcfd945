package dev.jreft.das.causal;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One interchange-intervention training or evaluation example: a base input, one source input per intervened
 * variable, and the causal model's output on the base (factual) and under the interchange (counterfactual).
 *
 * <p>In distributed alignment search the network is run on the base while the representation hypothesised to encode
 * each intervened variable is overwritten by its value on that variable's source; the counterfactual output is the
 * label the intervened network should then produce. For a single-output model the outputs are that output's value;
 * for a model with several outputs they are the ordered map of output values (see {@link CausalModel#label}).
 *
 * <p>The maps are copied (insertion order kept) and unmodifiable; the values themselves, e.g. {@code double[]}
 * embeddings, are shared, not copied. Equality and hashing compare values deeply (arrays element-wise), so two
 * examples drawn with the same seed are {@code equals}.
 *
 * @param baseInputs           the base run's inputs
 * @param sourceInputs         for each intervened variable, in intervention order, the inputs of its source run
 * @param intervenedVariables  the intervened variables: the keys of {@code sourceInputs}, in the same order
 * @param baseOutput           the causal model's output on the base inputs
 * @param counterfactualOutput the causal model's output under the interchange
 */
public record CounterfactualExample(Map<String, Object> baseInputs,
                                    Map<String, Map<String, Object>> sourceInputs,
                                    List<String> intervenedVariables,
                                    Object baseOutput,
                                    Object counterfactualOutput) {

    /** Validates that {@code intervenedVariables} lists exactly the keys of {@code sourceInputs}, in order. */
    public CounterfactualExample {
        Objects.requireNonNull(baseInputs, "baseInputs");
        Objects.requireNonNull(sourceInputs, "sourceInputs");
        Objects.requireNonNull(intervenedVariables, "intervenedVariables");
        Objects.requireNonNull(baseOutput, "baseOutput");
        Objects.requireNonNull(counterfactualOutput, "counterfactualOutput");
        if (!List.copyOf(sourceInputs.keySet()).equals(intervenedVariables)) {
            throw new IllegalArgumentException("intervenedVariables " + intervenedVariables
                    + " must list the keys of sourceInputs in order: " + sourceInputs.keySet());
        }
        baseInputs = Collections.unmodifiableMap(new LinkedHashMap<>(baseInputs));
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, Object>> e : sourceInputs.entrySet()) {
            Objects.requireNonNull(e.getValue(), "source inputs for '" + e.getKey() + "'");
            sources.put(e.getKey(), Collections.unmodifiableMap(new LinkedHashMap<>(e.getValue())));
        }
        sourceInputs = Collections.unmodifiableMap(sources);
        intervenedVariables = List.copyOf(intervenedVariables);
    }

    /** The source inputs used for one intervened variable. */
    public Map<String, Object> sourceFor(String variable) {
        Map<String, Object> s = sourceInputs.get(variable);
        if (s == null) {
            throw new IllegalArgumentException("'" + variable + "' is not intervened in this example; intervened: "
                    + intervenedVariables);
        }
        return s;
    }

    /** Whether the interchange changes the output (compared deeply, arrays element-wise). */
    public boolean changed() {
        return !Values.equal(baseOutput, counterfactualOutput);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CounterfactualExample other
                && Values.equal(baseInputs, other.baseInputs)
                && Values.equal(sourceInputs, other.sourceInputs)
                && intervenedVariables.equals(other.intervenedVariables)
                && Values.equal(baseOutput, other.baseOutput)
                && Values.equal(counterfactualOutput, other.counterfactualOutput);
    }

    @Override
    public int hashCode() {
        return Objects.hash(Values.hash(baseInputs), Values.hash(sourceInputs), intervenedVariables,
                Values.hash(baseOutput), Values.hash(counterfactualOutput));
    }

    @Override
    public String toString() {
        return "CounterfactualExample[base=" + Values.show(baseInputs) + ", sources=" + Values.show(sourceInputs)
                + ", baseOutput=" + Values.show(baseOutput) + ", counterfactualOutput="
                + Values.show(counterfactualOutput) + "]";
    }
}
