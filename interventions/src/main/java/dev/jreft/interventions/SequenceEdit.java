package dev.jreft.interventions;

import dev.jreft.hooks.discovery.TokenEmbedding;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The third contract, beside {@link Intervention} (a same-shape rewrite of one hook tensor) and {@link ModuleEdit}
 * (a linear module's output from its input): a method that makes the sequence longer by {@link #length()} virtual
 * tokens in front of the real ones (prompt tuning, P-tuning). jreft runs the graph on the batch extended by P
 * placeholder tokens (attention mask 1, token type 0, positions 0..P−1 and the real tokens' positions moved up by
 * P), replaces the placeholders' rows of the token embeddings by {@link #emitPrompt}, and cuts the virtual
 * positions off the outputs again: the user's positions, position specs, padding checks, pooling, losses and hook
 * sites index the real tokens, as without the edit. A method is one class: its parameters, how they start, and the
 * formula of the virtual tokens.
 */
public interface SequenceEdit {
    /** The method's name in configs and checkpoints ({@code prompt_tuning}). */
    String type();

    /** What decides the spliced graph besides the declared shapes (the formula; never a value). */
    default String structureKey() {
        return type();
    }

    /** P, the number of virtual tokens. */
    int length();

    /**
     * The trained parameters for a model whose token embeddings are {@code embedding}; {@code table} reads the
     * embedding table [vocab, width] for inits drawn from the vocabulary.
     */
    List<Parameter> parameters(TokenEmbedding embedding, Supplier<INDArray> table);

    /** The virtual tokens' embeddings [P, width] from the parameters ({@code params}: name -> graph input). */
    String emitPrompt(SubgraphBuilder b, Map<String, String> params);
}
