package dev.jreft.interventions;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.List;
import java.util.Map;

/**
 * Virtual keys and values in front of every layer's own (prefix tuning, peft's {@code past_key_values}): the
 * queries, and so the hidden states and outputs, stay the real tokens'. On an export with past inputs the prefixes
 * are the past; on one without, they are concatenated to the keys and values each layer's attention multiplies
 * (in the graph), the attention mask gains P ones in front and computed positions move up by P, as Hugging Face
 * models place tokens after a past of length P.
 */
public non-sealed interface KeyValuePrefix extends SequenceEdit {
    /**
     * Every layer's key and value prefix, {@code [key 0, value 0, key 1, ...]}, each [1, heads, P, head dim] (broadcast
     * over the batch), from the parameters ({@code params}: name -> graph input) of a model of {@code shape}.
     */
    List<String> emitPrefixes(SubgraphBuilder b, SequenceShape shape, Map<String, String> params);
}
