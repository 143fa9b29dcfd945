package dev.jreft.interventions;

import dev.jreft.hooks.graph.SubgraphBuilder;

import java.util.Map;

/**
 * Virtual tokens at the token embeddings (peft's {@code inputs_embeds = [prompt; E(input_ids)]}). jreft runs the
 * graph on the batch extended by P placeholder tokens (attention mask 1, token type 0, positions 0..P−1 and the real
 * tokens' positions moved up by P), replaces the placeholders' rows of the token embeddings by {@link #emitPrompt},
 * and cuts the virtual positions off the outputs and hook values again.
 */
public non-sealed interface SoftPrompt extends SequenceEdit {
    /** The virtual tokens' embeddings [P, width] from the parameters ({@code params}: name -> graph input). */
    String emitPrompt(SubgraphBuilder b, Map<String, String> params);
}
