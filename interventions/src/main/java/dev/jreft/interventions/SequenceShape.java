package dev.jreft.interventions;

import dev.jreft.hooks.discovery.ModelConfig;
import dev.jreft.hooks.discovery.TokenEmbedding;
import dev.jreft.hooks.runtime.HookedModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The sizes a sequence edit's parameters take from the model: the token vocabulary and width (soft prompts), the
 * layers and each layer's key / value heads and head size (prefixes). Read off the graph, never from a config; 0
 * where the graph does not give one (no token embedding, an unrecognised family).
 */
public record SequenceShape(long vocab, long width, int layers, long heads, long headDim) {
    public static SequenceShape of(HookedModel model) {
        var tokens = TokenEmbedding.of(model.graph());
        ModelConfig c = model.hooks().recognised() ? model.hooks().config() : null;
        long width = tokens.map(TokenEmbedding::width).orElse(c == null ? 0 : c.hidden());
        return new SequenceShape(tokens.map(TokenEmbedding::vocab).orElse(0L), width, c == null ? 0 : c.layers(),
                c == null ? 0 : c.kvHeads(), c == null ? 0 : c.headDim());
    }

    /** The token-embedding table [vocab, width] (read when an init samples from the vocabulary). */
    public static INDArray tokenTable(HookedModel model) {
        TokenEmbedding e = TokenEmbedding.of(model.graph()).orElseThrow(() -> new IllegalArgumentException(
                "the graph has no token embedding (a Gather from a [vocab, width] table indexed by input_ids)"));
        return Nd4j.create(model.graph().floats(e.table()), new long[] {e.vocab(), e.width()}, 'c');
    }
}
