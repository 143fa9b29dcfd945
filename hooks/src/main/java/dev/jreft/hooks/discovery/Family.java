package dev.jreft.hooks.discovery;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A model family as data: where its layers are ({@code <...>/layers.N/}, recognised by one module every layer has),
 * or by its attention output projection where a fused attention op swallowed the rest), where each canonical hook
 * sits in a layer (the input or output of a module, a node inside one, another hook, the
 * residual add after one), which modules give the sizes, and peft's default LoRA targets for it. {@link #ALL} lists the families; a new one is a new
 * entry. Module paths are relative to the layer, as the exporter names nodes ({@code attn/c_attn}).
 */
record Family(String name, String layerName, List<String> signatureModules, Map<String, Rule> components,
              Sizes sizes, List<String> loraTargets) {
    /** Where one hook's tensor is, within the layer whose module prefix (ending in '/') is {@code p}. */
    sealed interface Rule {
        Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found);
    }

    /** The first float tensor a module reads from outside it. */
    record Input(String module) implements Rule {
        public Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found) {
            return s.input(p + module + "/");
        }
    }

    /** The last float tensor a module hands to the rest of the graph. */
    record Output(String module) implements Rule {
        public Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found) {
            return s.output(p + module + "/");
        }
    }

    /** The output of the single node of type {@code op} inside a module (attention's Softmax). */
    record OpIn(String module, String op) implements Rule {
        public Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found) {
            return s.opOutput(p + module + "/", op);
        }
    }

    /** Output {@code index} of the three-way Split of a fused module's output (GPT-2's c_attn into q, k, v). */
    record SplitOf(String module, int index) implements Rule {
        public Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found) {
            return s.output(p + module + "/").flatMap(t -> s.dataConsumers(t).stream()
                    .filter(n -> n.getOpType().equals("Split") && n.getOutputCount() == 3).findFirst())
                    .map(n -> n.getOutput(index));
        }
    }

    /** The same tensor as another hook (BERT's attention input is its block input). */
    record Same(String component) implements Rule {
        public Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found) {
            return found.getOrDefault(component, Optional.empty());
        }
    }

    /** The output of the residual Add that consumes another hook (the block output of pre-LN blocks). */
    record ResidualAfter(String component) implements Rule {
        public Optional<String> find(ModuleScope s, String p, Map<String, Optional<String>> found) {
            return found.getOrDefault(component, Optional.empty()).flatMap(t -> s.dataConsumers(t).stream()
                    .filter(n -> n.getOpType().equals("Add")).map(n -> n.getOutput(0)).findFirst());
        }
    }

    /**
     * Which modules give the sizes: the norm whose gain has the hidden width, the query and key projections
     * (null: as wide as the hidden state, for a fused projection) and the MLP's output projection (its input width).
     */
    record Sizes(String norm, String queryProjection, String keyProjection, String mlpOutput) {
    }

    /** The families jreft recognises, tried in this order. */
    static final List<Family> ALL = List.of(
            new Family("gpt2", "h", List.of("attn/c_attn", "attn/c_proj"), table(
                    "block_input", new Input("ln_1"),
                    "attention_input", new Output("ln_1"),
                    "query_output", new SplitOf("attn/c_attn", 0),
                    "key_output", new SplitOf("attn/c_attn", 1),
                    "value_output", new SplitOf("attn/c_attn", 2),
                    "attention_weight", new OpIn("attn", "Softmax"),
                    "attention_value_output", new Input("attn/c_proj"),
                    "attention_output", new Output("attn/c_proj"),
                    "mlp_input", new Output("ln_2"),
                    "mlp_activation", new Input("mlp/c_proj"),
                    "mlp_output", new Output("mlp/c_proj"),
                    "block_output", new ResidualAfter("mlp_output")),
                    new Sizes("ln_1", null, null, "mlp/c_proj"), List.of("c_attn")),
            new Family("llama", "layers", List.of("self_attn/q_proj", "self_attn/o_proj"), table(
                    "block_input", new Input("input_layernorm"),
                    "attention_input", new Output("input_layernorm"),
                    "query_output", new Output("self_attn/q_proj"),
                    "key_output", new Output("self_attn/k_proj"),
                    "value_output", new Output("self_attn/v_proj"),
                    "attention_weight", new OpIn("self_attn", "Softmax"),
                    "attention_value_output", new Input("self_attn/o_proj"),
                    "attention_output", new Output("self_attn/o_proj"),
                    "mlp_input", new Output("post_attention_layernorm"),
                    "mlp_activation", new Input("mlp/down_proj"),
                    "mlp_output", new Output("mlp/down_proj"),
                    "block_output", new ResidualAfter("mlp_output")),
                    new Sizes("input_layernorm", "self_attn/q_proj", "self_attn/k_proj", "mlp/down_proj"),
                    List.of("q_proj", "v_proj")),
            // BERT, RoBERTa, MiniLM, BGE: post-LN, so the attention input is the block input and the block output is
            // output.LayerNorm's result
            new Family("bert", "layer", List.of("attention/self/query", "attention/output/dense"), table(
                    "block_input", new Input("attention/self/query"),
                    "attention_input", new Same("block_input"),
                    "query_output", new Output("attention/self/query"),
                    "key_output", new Output("attention/self/key"),
                    "value_output", new Output("attention/self/value"),
                    "attention_weight", new OpIn("attention/self", "Softmax"),
                    "attention_value_output", new Input("attention/output/dense"),
                    "attention_output", new Output("attention/output/dense"),
                    "mlp_input", new Output("attention/output/LayerNorm"),
                    "mlp_activation", new Input("output/dense"),
                    "mlp_output", new Output("output/dense"),
                    "block_output", new Output("output/LayerNorm")),
                    new Sizes("attention/output/LayerNorm", "attention/self/query", "attention/self/key",
                            "output/dense"), List.of("query", "value")));

    private static Map<String, Rule> table(Object... pairs) {
        Map<String, Rule> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put((String) pairs[i], (Rule) pairs[i + 1]);
        }
        return m;
    }

    /** Group 1: the layer container's path up to the index; group 2: the index. */
    Pattern layerPattern() {
        return Pattern.compile("^(.*/" + Pattern.quote(layerName) + "\\.)(\\d+)/(?:" + signatureModules.stream()
                .map(Pattern::quote).collect(java.util.stream.Collectors.joining("|")) + ")/");
    }

    /** What this family's node names look like, for error messages. */
    String signature() {
        return ".../" + layerName + ".N/" + signatureModules.get(0) + "/...";
    }

    /** Every component's tensor in the layer at prefix {@code p}, in table order. */
    Map<String, Optional<String>> components(ModuleScope s, String p) {
        Map<String, Optional<String>> found = new LinkedHashMap<>();
        components.forEach((c, rule) -> found.put(c, rule.find(s, p, found)));
        return found;
    }

    /** Sizes read off the layer's weights and reshapes; nothing comes from a config file. */
    ModelConfig config(ModuleScope s, String p, Map<String, String> hooks, int layers) {
        long d = s.normWidth(p + sizes.norm() + "/").orElseThrow(() -> new DetectionException("recognised a " + name
                + " graph but found no norm weight under '" + p + sizes.norm() + "/'"));
        long q = sizes.queryProjection() == null ? d
                : s.projectionShape(p + sizes.queryProjection() + "/").map(w -> w[1]).orElse(0L);
        long k = sizes.keyProjection() == null ? d
                : s.projectionShape(p + sizes.keyProjection() + "/").map(w -> w[1]).orElse(0L);
        long mlp = s.projectionShape(p + sizes.mlpOutput() + "/").map(w -> w[0]).orElse(0L);
        String query = hooks.get("query_output");
        long[] qs = query != null ? s.headSplit(query, q).orElseThrow(() -> new DetectionException(
                "recognised a " + name + " graph but could not read the head count: no Reshape of "
                        + query + " to [b, s, heads, head_dim] with constant sizes"))
                : s.fusedHeads().map(h -> new long[] {h, d / h}).orElseThrow(() -> new DetectionException(
                "recognised a " + name + " graph whose attention is fused, but no fused attention node says"
                        + " num_heads"));
        String key = hooks.get("key_output");
        long[] ks = key == null ? qs : s.headSplit(key, k).orElse(new long[] {k / qs[1], qs[1]});
        return new ModelConfig(name, layers, d, qs[0], ks[0], qs[1], mlp);
    }
}
