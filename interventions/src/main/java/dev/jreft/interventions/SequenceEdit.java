package dev.jreft.interventions;

import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.function.Supplier;

/**
 * The third contract, beside {@link Intervention} (a same-shape rewrite of one hook tensor) and {@link ModuleEdit}
 * (a linear module's output from its input): a method that makes the attended sequence longer by {@link #length()}
 * virtual positions in front of the real ones. Where they enter is the kind: {@link SoftPrompt} (virtual tokens at
 * the token embeddings: prompt tuning, P-tuning) or {@link KeyValuePrefix} (every layer's keys and values: prefix
 * tuning). Either way the user's positions, position specs, padding checks, pooling, losses and hook sites index the
 * real tokens, as without the edit. A method is one class: its parameters, how they start, and its formula.
 */
public sealed interface SequenceEdit permits SoftPrompt, KeyValuePrefix {
    /** The method's name in configs and checkpoints ({@code prompt_tuning}). */
    String type();

    /** What decides the spliced graph besides the declared shapes (the formula; never a value). */
    default String structureKey() {
        return type();
    }

    /** P, the number of virtual positions. */
    int length();

    /**
     * The trained parameters for a model of {@code shape}; {@code table} reads the token-embedding table
     * [vocab, width] for inits drawn from the vocabulary.
     */
    List<Parameter> parameters(SequenceShape shape, Supplier<INDArray> table);
}
