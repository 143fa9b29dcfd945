package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.Optional;
import java.util.Set;

/**
 * How a causal export without past inputs hides future keys, read off the graph, so that P prefix positions can be
 * put in front of its keys as a past would be. Two forms occur in torch exports:
 * <ul>
 *   <li>GPT-2 slices its lower-triangular buffer as {@code bias[:, :, k - q : k, :k]} with q and k the lengths of
 *       the query and key tensors: keys that carry the prefix move the slice by P on their own.</li>
 *   <li>Llama (transformers' {@code _prepare_4d_causal_attention_mask_with_cache_position}) builds
 *       {@code triu(full(q, k), 1) * (arange(k) > cache_position[:, None])} with {@code cache_position =
 *       arange(q)} when there is no past: with a past of P it is {@code arange(P, P + q)}.</li>
 * </ul>
 */
public final class CausalMask {
    private static final Set<String> PASS_THROUGH = Set.of("Reshape", "Unsqueeze", "Cast", "Identity");

    private CausalMask() {
    }

    /**
     * The {@code cache_position} tensor of the second form: the Range compared by a Greater against the Range of key
     * positions. Empty where the graph builds its mask otherwise.
     */
    public static Optional<String> queryPositions(OnnxGraph g) {
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("Greater") || n.getInputCount() != 2) {
                continue;
            }
            Optional<String> keys = range(g, n.getInput(0));
            Optional<String> queries = range(g, n.getInput(1));
            if (keys.isPresent() && queries.isPresent()) {
                return queries;
            }
        }
        return Optional.empty();
    }

    /** The Range output that {@code tensor} is, through reshapes and casts. */
    private static Optional<String> range(OnnxGraph g, String tensor) {
        String t = tensor;
        while (g.producer(t).filter(p -> PASS_THROUGH.contains(p.getOpType())).isPresent()) {
            t = g.producer(t).get().getInput(0);
        }
        String at = t;
        return g.producer(at).filter(p -> p.getOpType().equals("Range")).map(p -> at);
    }
}
