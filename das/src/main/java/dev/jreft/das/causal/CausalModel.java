package dev.jreft.das.causal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * A high-level causal model: a deterministic program written as a directed acyclic graph of named variables, the
 * hypothesis that distributed alignment search tests against a neural network.
 *
 * <p>The idea follows pyvene's {@code CausalModel}: a model is given by its variables, each variable's parents and a
 * mechanism that computes it from them. <em>Input</em> variables have no parents and are set by the caller;
 * <em>computed</em> variables are evaluated in topological order; one or more variables are designated
 * <em>outputs</em> (the task label). What makes such a model useful for interpretability is the counterfactual run,
 * {@link #interchange}: on a base input, chosen variables take the values they have on other (source) inputs and
 * everything downstream is recomputed. A network "implements" the model at some representation when swapping that
 * representation between base and source reproduces these counterfactual outputs.
 *
 * <p>Values are plain {@code Object}s (typically {@code Boolean}, {@code Integer} or {@code double[]}); arrays are
 * compared element-wise wherever this package compares values. Mechanisms must be pure functions of their parents'
 * values (no hidden state, no mutation of their arguments): a model is immutable and may be shared between threads.
 *
 * <pre>{@code
 * CausalModel m = CausalModel.builder()
 *         .input("X", "Y")
 *         .variable("S", "X", "Y", (x, y) -> (Integer) x + (Integer) y)
 *         .variable("O", "S", s -> (Integer) s > 5)
 *         .output("O")
 *         .build();
 * m.interchange(Map.of("X", 1, "Y", 2), Map.of("S", Map.of("X", 4, "Y", 4)));   // O = true
 * }</pre>
 */
public final class CausalModel {

    /** One declared variable; {@code mechanism == null} marks an input. */
    private record Node(String name, List<String> parents, Function<List<Object>, Object> mechanism) {
        boolean isInput() {
            return mechanism == null;
        }
    }

    private final Map<String, Node> nodes;     // topological order
    private final List<String> order;
    private final List<String> inputs;
    private final List<String> outputs;

    private CausalModel(Map<String, Node> nodes, List<String> order, List<String> inputs, List<String> outputs) {
        this.nodes = nodes;
        this.order = order;
        this.inputs = inputs;
        this.outputs = outputs;
    }

    /** Starts declaring a model. */
    public static Builder builder() {
        return new Builder();
    }

    /** All variable names in the topological order used for evaluation (ties broken by declaration order). */
    public List<String> variables() {
        return order;
    }

    /** The input variables (no parents), in declaration order. */
    public List<String> inputs() {
        return inputs;
    }

    /** The output variables, in the order they were designated. */
    public List<String> outputs() {
        return outputs;
    }

    /** The ordered parents of a variable (empty for an input); the mechanism receives their values in this order. */
    public List<String> parents(String variable) {
        return node(variable).parents();
    }

    /** Whether {@code variable} is an input variable of this model. */
    public boolean isInput(String variable) {
        return node(variable).isInput();
    }

    /**
     * The factual run: the value of every variable, in {@link #variables()} order.
     *
     * @param inputs a value for each input variable, no more and no fewer
     * @throws IllegalArgumentException naming missing or unexpected inputs, or the variable whose mechanism failed
     */
    public Map<String, Object> run(Map<String, Object> inputs) {
        return intervene(inputs, Map.of());
    }

    /** The value of the single output variable on these inputs; see {@link #outputs(Map)} for several outputs. */
    public Object output(Map<String, Object> inputs) {
        return singleOutput(run(inputs));
    }

    /** The values of the output variables on these inputs, in {@link #outputs()} order. */
    public Map<String, Object> outputs(Map<String, Object> inputs) {
        return outputsOf(run(inputs));
    }

    /**
     * The do-operation: runs on {@code inputs} with the given variables forced to the given values. Every variable
     * not forced is computed from its parents as they are in this run, so the forced values propagate downstream.
     * A forced input variable replaces that input; a forced variable downstream of another forced one keeps its
     * forced value.
     *
     * @param inputs a value for each input variable
     * @param values forced values by variable name (any variable of the model)
     * @return the value of every variable, in {@link #variables()} order
     */
    public Map<String, Object> intervene(Map<String, Object> inputs, Map<String, Object> values) {
        checkInputs(inputs, "inputs");
        Objects.requireNonNull(values, "values");
        for (Map.Entry<String, Object> e : values.entrySet()) {
            requireKnown(e.getKey(), "intervened variable");
            if (e.getValue() == null) {
                throw new IllegalArgumentException("intervened variable '" + e.getKey() + "' has a null value");
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (String name : order) {
            Node n = nodes.get(name);
            Object v;
            if (values.containsKey(name)) {
                v = values.get(name);
            } else if (n.isInput()) {
                v = inputs.get(name);
            } else {
                v = compute(n, out);
            }
            out.put(name, v);
        }
        return Collections.unmodifiableMap(out);
    }

    /**
     * The counterfactual (interchange) run. Each intervened variable takes the value it has in the factual run on
     * <em>its own</em> source inputs (different variables may use different sources); every other computed variable
     * is recomputed from its parents in this run on {@code baseInputs}, so downstream effects follow. Intervening on
     * an input variable substitutes the source's value for that input. With no intervened variables this is
     * {@link #run(Map)} on the base.
     *
     * @param baseInputs             a value for each input variable
     * @param sourceInputsByVariable for each intervened variable, complete inputs of the run it is taken from
     * @return the value of every variable, in {@link #variables()} order
     */
    public Map<String, Object> interchange(Map<String, Object> baseInputs,
                                           Map<String, Map<String, Object>> sourceInputsByVariable) {
        Objects.requireNonNull(sourceInputsByVariable, "sourceInputsByVariable");
        Map<Map<String, Object>, Map<String, Object>> sourceRuns = new IdentityHashMap<>();
        Map<String, Object> forced = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, Object>> e : sourceInputsByVariable.entrySet()) {
            String variable = e.getKey();
            requireKnown(variable, "intervened variable");
            Map<String, Object> source = e.getValue();
            if (source == null) {
                throw new IllegalArgumentException("no source inputs given for intervened variable '" + variable + "'");
            }
            Map<String, Object> sourceRun = sourceRuns.get(source);
            if (sourceRun == null) {
                checkInputs(source, "source inputs for '" + variable + "'");
                sourceRun = run(source);
                sourceRuns.put(source, sourceRun);
            }
            forced.put(variable, sourceRun.get(variable));
        }
        return intervene(baseInputs, forced);
    }

    /** The single output of {@link #interchange}; see there. */
    public Object interchangeOutput(Map<String, Object> baseInputs,
                                    Map<String, Map<String, Object>> sourceInputsByVariable) {
        return singleOutput(interchange(baseInputs, sourceInputsByVariable));
    }

    /**
     * The model's label on a full assignment of values (as returned by {@link #run} or {@link #interchange}): the
     * output's value for a single-output model, else the ordered map of output values.
     */
    public Object label(Map<String, Object> values) {
        return outputs.size() == 1 ? values.get(outputs.get(0)) : outputsOf(values);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("CausalModel[inputs=").append(inputs);
        for (String name : order) {
            Node n = nodes.get(name);
            if (!n.isInput()) {
                sb.append("; ").append(name).append(" <- ").append(n.parents());
            }
        }
        return sb.append("; outputs=").append(outputs).append(']').toString();
    }

    private Object compute(Node n, Map<String, Object> values) {
        List<Object> args = new ArrayList<>(n.parents().size());
        for (String p : n.parents()) {
            args.add(values.get(p));
        }
        List<Object> view = Collections.unmodifiableList(args);
        Object v;
        try {
            v = n.mechanism().apply(view);
        } catch (RuntimeException ex) {
            throw new IllegalArgumentException("mechanism of '" + n.name() + "' failed on parents "
                    + describe(n.parents(), args) + ": " + ex, ex);
        }
        if (v == null) {
            throw new IllegalArgumentException("mechanism of '" + n.name() + "' returned null on parents "
                    + describe(n.parents(), args) + "; mechanisms must return a value");
        }
        return v;
    }

    private static String describe(List<String> names, List<Object> values) {
        StringBuilder sb = new StringBuilder("{");
        for (int i = 0; i < names.size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(names.get(i)).append('=').append(Values.show(values.get(i)));
        }
        return sb.append('}').toString();
    }

    private Object singleOutput(Map<String, Object> values) {
        if (outputs.size() != 1) {
            throw new IllegalStateException("this model has " + outputs.size() + " outputs " + outputs
                    + "; use outputs(...) or read the variables from run(...)/interchange(...)");
        }
        return values.get(outputs.get(0));
    }

    private Map<String, Object> outputsOf(Map<String, Object> values) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (String o : outputs) {
            out.put(o, values.get(o));
        }
        return Collections.unmodifiableMap(out);
    }

    private Node node(String variable) {
        requireKnown(variable, "variable");
        return nodes.get(variable);
    }

    private void requireKnown(String variable, String role) {
        if (variable == null || !nodes.containsKey(variable)) {
            throw new IllegalArgumentException(role + " '" + variable + "' is not a variable of this model; variables are "
                    + order);
        }
    }

    private void checkInputs(Map<String, Object> given, String what) {
        Objects.requireNonNull(given, what);
        List<String> missing = new ArrayList<>();
        for (String in : inputs) {
            if (!given.containsKey(in)) {
                missing.add(in);
            } else if (given.get(in) == null) {
                throw new IllegalArgumentException(what + ": input '" + in + "' is null");
            }
        }
        List<String> extraComputed = new ArrayList<>();
        List<String> extraUnknown = new ArrayList<>();
        for (String k : given.keySet()) {
            if (!nodes.containsKey(k)) {
                extraUnknown.add(k);
            } else if (!nodes.get(k).isInput()) {
                extraComputed.add(k);
            }
        }
        if (missing.isEmpty() && extraComputed.isEmpty() && extraUnknown.isEmpty()) {
            return;
        }
        List<String> problems = new ArrayList<>();
        if (!missing.isEmpty()) {
            problems.add("missing " + missing);
        }
        if (!extraUnknown.isEmpty()) {
            problems.add("unknown " + extraUnknown + " (not variables of this model)");
        }
        if (!extraComputed.isEmpty()) {
            problems.add(extraComputed + " computed, not inputs (to fix a computed value use intervene or interchange)");
        }
        throw new IllegalArgumentException(what + ": " + String.join("; ", problems) + "; the inputs are exactly "
                + inputs);
    }

    /**
     * Declares a {@link CausalModel}. Names must be unique (checked as they are declared); {@link #build()} checks
     * that every parent is declared, that the graph has no cycle and that at least one output is designated.
     * Variables may be declared in any order.
     */
    public static final class Builder {
        private final Map<String, Node> declared = new LinkedHashMap<>();
        private final Set<String> outputs = new LinkedHashSet<>();

        private Builder() {
        }

        /** Declares input variables: no parents, values given by the caller of {@code run}. */
        public Builder input(String... names) {
            Objects.requireNonNull(names, "names");
            for (String name : names) {
                declare(new Node(checkName(name), List.of(), null));
            }
            return this;
        }

        /**
         * Declares a computed variable.
         *
         * @param name      its name
         * @param parents   the variables it depends on, at least one; their values reach the mechanism in this order
         * @param mechanism computes the value from the parents' values; must be pure and must not return null
         */
        public Builder variable(String name, List<String> parents, Function<List<Object>, Object> mechanism) {
            checkName(name);
            Objects.requireNonNull(parents, "parents of '" + name + "'");
            Objects.requireNonNull(mechanism, "mechanism of '" + name + "'");
            if (parents.isEmpty()) {
                throw new IllegalArgumentException("computed variable '" + name + "' has no parents; "
                        + "declare it with input(\"" + name + "\") if the caller sets it, or give it parents");
            }
            for (String p : parents) {
                if (p == null) {
                    throw new IllegalArgumentException("computed variable '" + name + "' has a null parent: " + parents);
                }
            }
            declare(new Node(name, List.copyOf(parents), mechanism));
            return this;
        }

        /** Declares a computed variable with one parent. */
        public Builder variable(String name, String parent, Function<Object, Object> mechanism) {
            Objects.requireNonNull(mechanism, "mechanism of '" + name + "'");
            return variable(name, java.util.Arrays.asList(parent), args -> mechanism.apply(args.get(0)));
        }

        /** Declares a computed variable with two parents, passed to the mechanism in this order. */
        public Builder variable(String name, String parent1, String parent2, BiFunction<Object, Object, Object> mechanism) {
            Objects.requireNonNull(mechanism, "mechanism of '" + name + "'");
            return variable(name, java.util.Arrays.asList(parent1, parent2),
                    args -> mechanism.apply(args.get(0), args.get(1)));
        }

        /** Designates output variables (declared before or after this call). */
        public Builder output(String... names) {
            Objects.requireNonNull(names, "names");
            for (String name : names) {
                checkName(name);
                if (!outputs.add(name)) {
                    throw new IllegalArgumentException("'" + name + "' is designated as an output twice");
                }
            }
            return this;
        }

        /**
         * Validates and freezes the model.
         *
         * @throws IllegalArgumentException on an undeclared parent or output, a cycle, or no output
         */
        public CausalModel build() {
            if (declared.isEmpty()) {
                throw new IllegalArgumentException("the model declares no variables; declare inputs with input(...), "
                        + "computed variables with variable(...) and designate outputs with output(...)");
            }
            for (Node n : declared.values()) {
                List<String> unknown = n.parents().stream().filter(p -> !declared.containsKey(p)).distinct()
                        .collect(Collectors.toList());
                if (!unknown.isEmpty()) {
                    throw new IllegalArgumentException("variable '" + n.name() + "' has unknown parent"
                            + (unknown.size() == 1 ? " '" + unknown.get(0) + "'" : "s " + unknown)
                            + "; declared variables are " + declared.keySet());
                }
            }
            if (outputs.isEmpty()) {
                throw new IllegalArgumentException("the model has no output; designate one or more of "
                        + declared.keySet() + " with output(...)");
            }
            for (String o : outputs) {
                if (!declared.containsKey(o)) {
                    throw new IllegalArgumentException("output '" + o + "' is not a declared variable; declared variables are "
                            + declared.keySet());
                }
            }
            List<String> order = topologicalOrder();
            Map<String, Node> nodes = new LinkedHashMap<>();
            List<String> inputs = new ArrayList<>();
            for (String name : order) {
                nodes.put(name, declared.get(name));
            }
            for (Node n : declared.values()) {
                if (n.isInput()) {
                    inputs.add(n.name());
                }
            }
            if (inputs.isEmpty()) {
                // unreachable: every computed variable has a parent and the graph is acyclic, so some root exists
                throw new IllegalStateException("no input variables");
            }
            return new CausalModel(Collections.unmodifiableMap(nodes), List.copyOf(order), List.copyOf(inputs),
                    List.copyOf(outputs));
        }

        /** Repeatedly places the earliest-declared variable whose parents are all placed; fails naming a cycle. */
        private List<String> topologicalOrder() {
            List<String> order = new ArrayList<>(declared.size());
            Set<String> placed = new HashSet<>();
            while (order.size() < declared.size()) {
                Node ready = null;
                for (Node n : declared.values()) {
                    if (!placed.contains(n.name()) && placed.containsAll(n.parents())) {
                        ready = n;
                        break;
                    }
                }
                if (ready == null) {
                    throw new IllegalArgumentException("the variables form a cycle: " + String.join(" -> ", findCycle(placed))
                            + " (each arrow goes from a parent to its child); a variable may not depend, directly or "
                            + "through others, on itself");
                }
                placed.add(ready.name());
                order.add(ready.name());
            }
            return order;
        }

        /** Among unplaced variables every one has an unplaced parent; walking parents must revisit a variable. */
        private List<String> findCycle(Set<String> placed) {
            String start = declared.keySet().stream().filter(k -> !placed.contains(k)).findFirst().orElseThrow();
            List<String> path = new ArrayList<>();
            Map<String, Integer> seenAt = new LinkedHashMap<>();
            String cur = start;
            while (!seenAt.containsKey(cur)) {
                seenAt.put(cur, path.size());
                path.add(cur);
                cur = declared.get(cur).parents().stream().filter(p -> !placed.contains(p)).findFirst().orElseThrow();
            }
            List<String> cycle = new ArrayList<>(path.subList(seenAt.get(cur), path.size()));
            cycle.add(cur);
            Collections.reverse(cycle);   // child -> parent walk, printed parent -> child
            return cycle;
        }

        private void declare(Node n) {
            Node previous = declared.get(n.name());
            if (previous != null) {
                throw new IllegalArgumentException("variable '" + n.name() + "' is declared twice (first as "
                        + (previous.isInput() ? "an input" : "computed from " + previous.parents())
                        + "); names must be unique, declared so far: " + declared.keySet());
            }
            declared.put(n.name(), n);
        }

        private static String checkName(String name) {
            if (name == null || name.isBlank()) {
                throw new IllegalArgumentException("variable names must be non-empty, got " + (name == null ? "null" : "'" + name + "'"));
            }
            return name;
        }
    }
}
