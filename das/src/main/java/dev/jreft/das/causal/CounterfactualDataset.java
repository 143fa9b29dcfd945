package dev.jreft.das.causal;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.Set;
import java.util.function.Function;

/**
 * Draws counterfactual (interchange-intervention) examples from a causal model: the training and evaluation data of
 * distributed alignment search.
 *
 * <p>Each example draws a base input and, for each intervened variable, an independent source input from the same
 * input distribution, then labels it with the model's factual output on the base and its counterfactual output under
 * the interchange. Everything is drawn from one {@link Random} seeded by the caller, in a fixed order (base, then the
 * sources in the order of {@code variables}), so a seed reproduces the dataset exactly, provided the input sampler
 * itself draws only from the {@code Random} it is given.
 *
 * <p>Pyvene-style evaluations often keep only examples whose counterfactual label differs from the base label:
 * when the intervention usually leaves the output unchanged, a network that ignores the intervention scores well.
 * {@link #sampleChanging} draws those.
 */
public final class CounterfactualDataset {

    private CounterfactualDataset() {
    }

    /**
     * Draws {@code n} counterfactual examples.
     *
     * @param model        the causal model
     * @param inputSampler draws one complete input assignment from the given {@code Random}
     * @param variables    the intervened variables (at least one, distinct, variables of the model)
     * @param n            how many examples, {@code >= 0}
     * @param seed         the seed of the single {@code Random} used for all draws
     */
    public static List<CounterfactualExample> sample(CausalModel model, Function<Random, Map<String, Object>> inputSampler,
                                                     List<String> variables, int n, long seed) {
        check(model, inputSampler, variables, n);
        Random rng = new Random(seed);
        List<CounterfactualExample> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(draw(model, inputSampler, variables, rng));
        }
        return List.copyOf(out);
    }

    /**
     * Draws {@code n} examples whose counterfactual output differs from the base output, giving up after
     * {@code maxTries} draws in all (kept or discarded).
     *
     * @throws IllegalStateException when fewer than {@code n} changing examples turn up in {@code maxTries} draws
     */
    public static List<CounterfactualExample> sampleChanging(CausalModel model,
                                                             Function<Random, Map<String, Object>> inputSampler,
                                                             List<String> variables, int n, long seed, long maxTries) {
        check(model, inputSampler, variables, n);
        if (maxTries < n) {
            throw new IllegalArgumentException("maxTries (" + maxTries + ") must be at least n (" + n + ")");
        }
        Random rng = new Random(seed);
        List<CounterfactualExample> out = new ArrayList<>(n);
        long tries = 0;
        while (out.size() < n) {
            if (tries == maxTries) {
                throw new IllegalStateException("only " + out.size() + " of " + n + " requested examples changed the output in "
                        + maxTries + " draws when intervening on " + variables + " (" + model.outputs()
                        + " rarely or never depends on them under this input sampler); raise maxTries, intervene on "
                        + "other variables or use sample(...), which keeps unchanged examples");
            }
            tries++;
            CounterfactualExample e = draw(model, inputSampler, variables, rng);
            if (e.changed()) {
                out.add(e);
            }
        }
        return List.copyOf(out);
    }

    /** {@link #sampleChanging(CausalModel, Function, List, int, long, long)} with at most {@code max(1000, 100 n)} draws. */
    public static List<CounterfactualExample> sampleChanging(CausalModel model,
                                                             Function<Random, Map<String, Object>> inputSampler,
                                                             List<String> variables, int n, long seed) {
        return sampleChanging(model, inputSampler, variables, n, seed, Math.max(1000L, 100L * n));
    }

    /** The fraction of examples whose counterfactual output differs from the base output (0 for no examples). */
    public static double changedFraction(List<CounterfactualExample> examples) {
        if (examples.isEmpty()) {
            return 0;
        }
        return examples.stream().filter(CounterfactualExample::changed).count() / (double) examples.size();
    }

    private static CounterfactualExample draw(CausalModel model, Function<Random, Map<String, Object>> inputSampler,
                                              List<String> variables, Random rng) {
        Map<String, Object> base = sampleInputs(inputSampler, rng, "base");
        Map<String, Map<String, Object>> sources = new LinkedHashMap<>();
        for (String v : variables) {
            sources.put(v, sampleInputs(inputSampler, rng, "source for '" + v + "'"));
        }
        Object baseOutput = model.label(model.run(base));
        Object cfOutput = model.label(model.interchange(base, sources));
        return new CounterfactualExample(base, sources, variables, baseOutput, cfOutput);
    }

    private static Map<String, Object> sampleInputs(Function<Random, Map<String, Object>> inputSampler, Random rng,
                                                    String what) {
        Map<String, Object> in = inputSampler.apply(rng);
        if (in == null) {
            throw new IllegalArgumentException("the input sampler returned null for the " + what);
        }
        return in;
    }

    private static void check(CausalModel model, Function<Random, Map<String, Object>> inputSampler,
                              List<String> variables, int n) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(inputSampler, "inputSampler");
        Objects.requireNonNull(variables, "variables");
        if (n < 0) {
            throw new IllegalArgumentException("n must be >= 0, got " + n);
        }
        if (variables.isEmpty()) {
            throw new IllegalArgumentException("intervene on at least one variable; the model's variables are "
                    + model.variables());
        }
        Set<String> seen = new HashSet<>();
        for (String v : variables) {
            if (v == null || !model.variables().contains(v)) {
                throw new IllegalArgumentException("intervened variable '" + v + "' is not a variable of the model; "
                        + "variables are " + model.variables());
            }
            if (!seen.add(v)) {
                throw new IllegalArgumentException("intervened variable '" + v + "' is listed twice in " + variables);
            }
        }
    }
}
