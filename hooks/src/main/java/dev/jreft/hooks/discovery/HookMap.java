package dev.jreft.hooks.discovery;

import dev.jreft.hooks.graph.OnnxGraph;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The canonical hooks of one graph, in layer order, plus resolution of raw {@code tensor:} names. */
public final class HookMap {
    public static final List<String> COMPONENTS = List.of("block_input", "attention_input", "query_output",
            "key_output", "value_output", "attention_weight", "attention_value_output", "attention_output",
            "mlp_input", "mlp_activation", "mlp_output", "block_output");

    /** How to get a graph whose fused ops hide no hook. */
    public static final String FUSED_HOW = FusedOps.HOW;

    private final ModelConfig config;
    private final Map<String, HookPoint> hooks;
    private final OnnxGraph graph;
    private final String unrecognised;
    /** Canonical hooks a fused op swallowed, by name, with what hides them. */
    private final Map<String, String> hidden;

    public HookMap(ModelConfig config, List<HookPoint> hooks, OnnxGraph graph) {
        this(config, hooks, graph, Map.of());
    }

    /** A map whose {@code hidden} hooks (name → why) exist in the model but not as tensors of this graph. */
    public HookMap(ModelConfig config, List<HookPoint> hooks, OnnxGraph graph, Map<String, String> hidden) {
        this.hidden = Collections.unmodifiableMap(new LinkedHashMap<>(hidden));
        this.config = config;
        Map<String, HookPoint> m = new LinkedHashMap<>();
        for (HookPoint h : hooks) {
            m.put(h.name(), h);
        }
        this.hooks = Collections.unmodifiableMap(m);
        this.graph = graph;
        this.unrecognised = null;
    }

    private HookMap(OnnxGraph graph, String why) {
        this.hidden = Map.of();
        this.config = null;
        this.hooks = Map.of();
        this.graph = graph;
        this.unrecognised = why;
    }

    /** A graph of no known family: only raw {@code tensor:} hooks resolve; {@code why} says what was found. */
    public static HookMap rawOnly(OnnxGraph graph, String why) {
        return new HookMap(graph, why);
    }

    /** True when a family was recognised and canonical hook names resolve. */
    public boolean recognised() {
        return unrecognised == null;
    }

    /** The model's sizes; an error for a graph of no known family. */
    public ModelConfig config() {
        if (config == null) {
            throw new DetectionException(unrecognised);
        }
        return config;
    }

    /** Hooks of the model that this graph's fused ops hide (name → the node that hides it); empty for most graphs. */
    public Map<String, String> hidden() {
        return hidden;
    }

    public List<HookPoint> all() {
        return List.copyOf(hooks.values());
    }

    public List<String> names() {
        return List.copyOf(hooks.keySet());
    }

    /**
     * The hook names of one component in every layer, in layer order ({@code blocks.0.block_output} ..
     * {@code blocks.<L-1>.block_output}); what {@link dev.jreft.hooks.runtime.ActivationCache#stackByLayer} stacks.
     */
    public List<String> layers(String component) {
        if (!COMPONENTS.contains(component)) {
            throw new UnknownHookException("unknown component '" + component + "'; components: " + COMPONENTS
                    + suggest(component, COMPONENTS));
        }
        ModelConfig c = config();
        List<String> names = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            names.add("blocks." + l + "." + component);
        }
        return names;
    }

    /** Canonical name or {@code tensor:<raw name>}; an unknown name is an error that suggests close names. */
    public HookPoint resolve(String name) {
        HookPoint h = hooks.get(name);
        if (h != null) {
            return h;
        }
        if (hidden.containsKey(name)) {
            throw new UnknownHookException("hook '" + name + "' is " + hidden.get(name) + "; " + FusedOps.HOW);
        }
        if (name.startsWith(HookPoint.RAW_PREFIX)) {
            String tensor = name.substring(HookPoint.RAW_PREFIX.length());
            if (!graph.hasTensor(tensor)) {
                throw new UnknownHookException("graph has no tensor named '" + tensor + "'"
                        + suggest(tensor, graph.producedTensors()));
            }
            return HookPoint.raw(tensor);
        }
        if (!recognised()) {
            throw new UnknownHookException("hook '" + name + "' needs a recognised model family; " + unrecognised);
        }
        throw new UnknownHookException("unknown hook '" + name + "' for this " + config.family() + " model ("
                + config.layers() + " layers: blocks.0.." + (config.layers() - 1) + ".<component>, components "
                + COMPONENTS + "; raw tensors as tensor:<name>)" + suggest(name, hooks.keySet()));
    }

    private static String suggest(String name, java.util.Collection<String> candidates) {
        List<String> sorted = new ArrayList<>(candidates);
        sorted.sort(Comparator.comparingInt(c -> distance(name, c)));
        List<String> best = sorted.subList(0, Math.min(3, sorted.size()));
        return best.isEmpty() ? "" : ". Did you mean " + String.join(", ", best) + "?";
    }

    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
