package dev.jreft.interventions;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** One sequence edit (a soft prompt) with its parameter values. */
public record SequenceSite(SequenceEdit edit, Map<String, INDArray> params) implements ModelEdit {
    public SequenceSite {
        params = params == null ? Map.of() : Map.copyOf(params);
    }
}
