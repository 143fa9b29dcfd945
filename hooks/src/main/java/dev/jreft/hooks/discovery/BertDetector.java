package dev.jreft.hooks.discovery;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * BERT, RoBERTa, MiniLM, BGE: post-LN encoder layers {@code layer.N}. The attention input is the block input
 * itself (no norm in front), and the block output is {@code output.LayerNorm}'s result.
 */
final class BertDetector extends LayeredDetector {
    private static final Pattern LAYER = Pattern.compile("^(.*/layer\\.)(\\d+)/attention/self/query/");

    @Override
    public String family() {
        return "bert";
    }

    @Override
    public String signature() {
        return ".../layer.N/attention/self/query/...";
    }

    @Override
    Pattern layerPattern() {
        return LAYER;
    }

    @Override
    Map<String, Optional<String>> components(ModuleScope s, String p) {
        Map<String, Optional<String>> c = new HashMap<>();
        c.put("block_input", s.input(p + "attention/self/query/"));
        c.put("attention_input", c.get("block_input"));
        c.put("query_output", s.output(p + "attention/self/query/"));
        c.put("key_output", s.output(p + "attention/self/key/"));
        c.put("value_output", s.output(p + "attention/self/value/"));
        c.put("attention_weight", s.opOutput(p + "attention/self/", "Softmax"));
        c.put("attention_value_output", s.input(p + "attention/output/dense/"));
        c.put("attention_output", s.output(p + "attention/output/dense/"));
        c.put("mlp_input", s.output(p + "attention/output/LayerNorm/"));
        c.put("mlp_activation", s.input(p + "output/dense/"));
        c.put("mlp_output", s.output(p + "output/dense/"));
        c.put("block_output", s.output(p + "output/LayerNorm/"));
        return c;
    }

    @Override
    ModelConfig config(ModuleScope s, String p, Map<String, String> hooks, int layers) {
        long q = s.projectionShape(p + "attention/self/query/").map(w -> w[1]).orElse(0L);
        long k = s.projectionShape(p + "attention/self/key/").map(w -> w[1]).orElse(0L);
        long mlp = s.projectionShape(p + "output/dense/").map(w -> w[0]).orElse(0L);
        return commonConfig(s, p + "attention/output/LayerNorm/", hooks, q, k, mlp, layers);
    }
}
