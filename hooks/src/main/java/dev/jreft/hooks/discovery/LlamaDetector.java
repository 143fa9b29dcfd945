package dev.jreft.hooks.discovery;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Llama, Qwen2, Mistral: pre-RMSNorm decoder layers {@code layers.N} with separate q/k/v projections (key and
 * value may have fewer heads: grouped-query attention) and a gated MLP.
 */
final class LlamaDetector extends LayeredDetector {
    private static final Pattern LAYER = Pattern.compile("^(.*/layers\\.)(\\d+)/self_attn/q_proj/");

    @Override
    public String family() {
        return "llama";
    }

    @Override
    public String signature() {
        return ".../layers.N/self_attn/q_proj/...";
    }

    @Override
    Pattern layerPattern() {
        return LAYER;
    }

    @Override
    Map<String, Optional<String>> components(ModuleScope s, String p) {
        Map<String, Optional<String>> c = new HashMap<>();
        c.put("block_input", s.input(p + "input_layernorm/"));
        c.put("attention_input", s.output(p + "input_layernorm/"));
        c.put("query_output", s.output(p + "self_attn/q_proj/"));
        c.put("key_output", s.output(p + "self_attn/k_proj/"));
        c.put("value_output", s.output(p + "self_attn/v_proj/"));
        c.put("attention_weight", s.opOutput(p + "self_attn/", "Softmax"));
        c.put("attention_value_output", s.input(p + "self_attn/o_proj/"));
        c.put("attention_output", s.output(p + "self_attn/o_proj/"));
        c.put("mlp_input", s.output(p + "post_attention_layernorm/"));
        c.put("mlp_activation", s.input(p + "mlp/down_proj/"));
        c.put("mlp_output", s.output(p + "mlp/down_proj/"));
        c.put("block_output", residualAdd(s, c.get("mlp_output")));
        return c;
    }

    @Override
    ModelConfig config(ModuleScope s, String p, Map<String, String> hooks, int layers) {
        long q = s.projectionShape(p + "self_attn/q_proj/").map(w -> w[1]).orElse(0L);
        long k = s.projectionShape(p + "self_attn/k_proj/").map(w -> w[1]).orElse(0L);
        long mlp = s.projectionShape(p + "mlp/down_proj/").map(w -> w[0]).orElse(0L);
        return commonConfig(s, p + "input_layernorm/", hooks, q, k, mlp, layers);
    }
}
