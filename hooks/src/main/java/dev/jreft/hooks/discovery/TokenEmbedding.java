package dev.jreft.hooks.discovery;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import dev.jreft.hooks.graph.OnnxGraph;

import java.util.Optional;

/**
 * The word-embedding lookup of a token model: the Gather from a [vocab, width] initializer whose indices are
 * {@code input_ids} (through reshapes and casts). Its output is where soft prompts go: before position and
 * token-type embeddings are added and before any embedding norm, as peft prepends them to {@code inputs_embeds}.
 *
 * @param output the Gather's output [b, s, width]
 * @param table  the embedding initializer's name
 */
public record TokenEmbedding(String output, String table, long vocab, long width) {
    public static Optional<TokenEmbedding> of(OnnxGraph g) {
        for (NodeProto n : g.nodes()) {
            if (!n.getOpType().equals("Gather") || n.getInputCount() < 2 || OnnxGraph.attrInt(n, "axis", 0) != 0) {
                continue;
            }
            Optional<TensorProto> table = g.initializer(n.getInput(0));
            if (table.isEmpty() || table.get().getDimsCount() != 2) {
                continue;
            }
            if (InputLimits.indexedInput(g, n.getInput(1)).filter("input_ids"::equals).isPresent()) {
                return Optional.of(new TokenEmbedding(n.getOutput(0), n.getInput(0), table.get().getDims(0),
                        table.get().getDims(1)));
            }
        }
        return Optional.empty();
    }
}
