package dev.jreft.training;

import dev.jreft.hooks.discovery.TokenEmbedding;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.SequenceEdit;
import dev.jreft.interventions.SequenceShape;
import dev.jreft.interventions.SequenceSite;
import dev.jreft.interventions.params.Parameter;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/** One soft prompt in front of every example, parameters {@code prompt_encoder.<name>} (peft's module name). */
final class PromptSites implements TrainableSites {
    static final String PREFIX = "prompt_encoder";

    private final SequenceEdit edit;
    private final List<Parameter> declared;

    PromptSites(HookedModel model, SequenceEdit edit) {
        this.edit = edit;
        if (edit instanceof dev.jreft.interventions.SoftPrompt && TokenEmbedding.of(model.graph()).isEmpty()) {
            throw ConfigException.of("method", "found " + edit.type() + " for a graph without token embeddings;"
                    + " valid: a token model (a Gather from a [vocab, width] table indexed by input_ids)");
        }
        this.declared = edit.parameters(SequenceShape.of(model), () -> SequenceShape.tokenTable(model));
    }

    @Override
    public Map<String, Parameter> declarations() {
        return TrainableSites.prefixedDeclarations(List.of(PREFIX), List.of(declared));
    }

    @Override
    public List<SequenceSite> sequence(Map<String, INDArray> params) {
        return List.of(new SequenceSite(edit, TrainableSites.unprefixed(PREFIX, declared, params)));
    }

    @Override
    public int virtualTokens() {
        return edit.length();
    }

    @Override
    public Map<String, INDArray> collect(IntervenableModel.Gradients g) {
        return TrainableSites.prefixed(List.of(PREFIX), g.perEdit(), g.extra());
    }
}
