package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/** GPT-2: pre-LN blocks {@code h.N} with a fused {@code c_attn} Conv1D split into query, key and value. */
final class Gpt2Detector extends LayeredDetector {
    private static final Pattern LAYER = Pattern.compile("^(.*/h\\.)(\\d+)/attn/c_attn/");

    @Override
    public String family() {
        return "gpt2";
    }

    @Override
    public String signature() {
        return ".../h.N/attn/c_attn/...";
    }

    @Override
    Pattern layerPattern() {
        return LAYER;
    }

    @Override
    Map<String, Optional<String>> components(ModuleScope s, String p) {
        Map<String, Optional<String>> c = new HashMap<>();
        c.put("block_input", s.input(p + "ln_1/"));
        c.put("attention_input", s.output(p + "ln_1/"));
        Optional<NodeProto> split = s.output(p + "attn/c_attn/").flatMap(qkv -> s.graph().consumers(qkv).stream()
                .filter(n -> n.getOpType().equals("Split") && n.getOutputCount() == 3).findFirst());
        c.put("query_output", split.map(n -> n.getOutput(0)));
        c.put("key_output", split.map(n -> n.getOutput(1)));
        c.put("value_output", split.map(n -> n.getOutput(2)));
        c.put("attention_weight", s.opOutput(p + "attn/", "Softmax"));
        c.put("attention_value_output", s.input(p + "attn/c_proj/"));
        c.put("attention_output", s.output(p + "attn/c_proj/"));
        c.put("mlp_input", s.output(p + "ln_2/"));
        c.put("mlp_activation", s.input(p + "mlp/c_proj/"));
        c.put("mlp_output", s.output(p + "mlp/c_proj/"));
        c.put("block_output", residualAdd(s, c.get("mlp_output")));
        return c;
    }

    @Override
    ModelConfig config(ModuleScope s, String p, Map<String, String> hooks, int layers) {
        long d = s.normWidth(p + "ln_1/").orElse(0L);
        long mlp = s.projectionShape(p + "mlp/c_proj/").map(w -> w[0]).orElse(0L);
        return commonConfig(s, p + "ln_1/", hooks, d, d, mlp, layers);
    }
}
