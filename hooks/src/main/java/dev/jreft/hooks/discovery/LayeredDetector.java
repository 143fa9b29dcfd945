package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Shared walk for families whose layers are numbered modules: finds every layer prefix with the family's
 * signature pattern, asks the family for each component's tensor, and checks that all twelve were found.
 */
abstract class LayeredDetector implements FamilyDetector {
    /** A pattern whose group 1 is the layer prefix up to the index and group 2 the layer index. */
    abstract Pattern layerPattern();

    /** Tensor of each component for the layer whose module prefix (ending in '/') is {@code p}. */
    abstract Map<String, Optional<String>> components(ModuleScope s, String p);

    /** Reads sizes; {@code hooks} maps component to tensor for layer 0. */
    abstract ModelConfig config(ModuleScope s, String p0, Map<String, String> hooks, int layers);

    @Override
    public Optional<HookMap> detect(ModuleScope s) {
        TreeMap<Integer, String> layers = new TreeMap<>();
        for (NodeProto n : s.graph().nodes()) {
            Matcher m = layerPattern().matcher(n.getName());
            if (m.find()) {
                layers.put(Integer.parseInt(m.group(2)), m.group(1) + m.group(2) + "/");
            }
        }
        if (layers.isEmpty()) {
            return Optional.empty();
        }
        if (layers.firstKey() != 0 || layers.lastKey() != layers.size() - 1) {
            throw new DetectionException("recognised " + family() + " layers " + layers.keySet()
                    + " but they are not numbered 0.." + (layers.size() - 1));
        }
        List<HookPoint> hooks = new ArrayList<>();
        Map<String, String> layer0 = null;
        ModelConfig config = null;
        for (var e : layers.entrySet()) {
            Map<String, Optional<String>> found = components(s, e.getValue());
            List<String> missing = new ArrayList<>();
            Map<String, String> tensors = new TreeMap<>();
            for (String c : HookMap.COMPONENTS) {
                Optional<String> t = found.getOrDefault(c, Optional.empty());
                if (t.isPresent()) {
                    tensors.put(c, t.get());
                } else {
                    missing.add(c);
                }
            }
            if (!missing.isEmpty()) {
                throw new DetectionException("recognised a " + family() + " graph (" + layers.size()
                        + " layers under '" + e.getValue() + "') but could not place " + missing + " of layer "
                        + e.getKey() + "; found " + tensors.keySet()
                        + ". Use raw tensor names (tensor:<name>) for this export.");
            }
            if (layer0 == null) {
                layer0 = tensors;
                config = config(s, e.getValue(), tensors, layers.size());
            }
            for (String c : HookMap.COMPONENTS) {
                hooks.add(new HookPoint("blocks." + e.getKey() + "." + c, tensors.get(c), e.getKey(), c,
                        layout(c, config)));
            }
        }
        return Optional.of(new HookMap(config, hooks, s.graph()));
    }

    static HookLayout layout(String component, ModelConfig c) {
        return switch (component) {
            case "query_output", "attention_value_output" -> HookLayout.heads(c.heads(), c.headDim());
            case "key_output", "value_output" -> HookLayout.heads(c.kvHeads(), c.headDim());
            case "attention_weight" -> new HookLayout(HookLayout.Kind.ATTENTION_PATTERN, -1, c.heads(), 0);
            case "mlp_activation" -> new HookLayout(HookLayout.Kind.MLP, c.mlpWidth(), 0, 0);
            default -> HookLayout.residual(c.hidden());
        };
    }

    /** The output of the residual Add that consumes {@code branch} (the block's output for pre-LN blocks). */
    static Optional<String> residualAdd(ModuleScope s, Optional<String> branch) {
        if (branch.isEmpty()) {
            return Optional.empty();
        }
        return s.graph().consumers(branch.get()).stream().filter(n -> n.getOpType().equals("Add"))
                .map(n -> n.getOutput(0)).findFirst();
    }

    /** Sizes common to all families: hidden width from a norm, heads from the query/key reshapes. */
    ModelConfig commonConfig(ModuleScope s, String normPrefix, Map<String, String> hooks, long qWidth, long kWidth,
                             long mlpWidth, int layers) {
        long d = s.normWidth(normPrefix).orElseThrow(() -> new DetectionException(
                "recognised a " + family() + " graph but found no norm weight under '" + normPrefix + "'"));
        long[] q = s.headSplit(hooks.get("query_output"), qWidth).orElseThrow(() -> new DetectionException(
                "recognised a " + family() + " graph but could not read the head count: no Reshape of "
                        + hooks.get("query_output") + " to [b, s, heads, head_dim] with constant sizes"));
        long[] k = s.headSplit(hooks.get("key_output"), kWidth).orElse(new long[] {kWidth / q[1], q[1]});
        return new ModelConfig(family(), layers, d, q[0], k[0], q[1], mlpWidth);
    }
}
