package dev.jreft.interventions;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/** One module edit at one linear module ({@code module} is its HF path) with its parameter values. */
public record ModuleSite(String module, ModuleEdit edit, Map<String, INDArray> params) implements ModelEdit {
    public ModuleSite {
        params = params == null ? Map.of() : Map.copyOf(params);
    }
}
