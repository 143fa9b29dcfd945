package dev.jreft.hooks.runtime;

import dev.jreft.hooks.io.OutputFolder;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Hook values (by hook name) and model outputs (by output name) from one run. */
public record ActivationCache(Map<String, INDArray> hooks, Map<String, INDArray> outputs) {
    public ActivationCache {
        hooks = Collections.unmodifiableMap(new LinkedHashMap<>(hooks));
        outputs = Collections.unmodifiableMap(new LinkedHashMap<>(outputs));
    }

    public INDArray get(String hook) {
        INDArray a = hooks.get(hook);
        if (a == null) {
            throw new IllegalArgumentException("hook '" + hook + "' was not cached; cached: " + hooks.keySet());
        }
        return a;
    }

    public INDArray output(String name) {
        INDArray a = outputs.get(name);
        if (a == null) {
            throw new IllegalArgumentException("no output '" + name + "'; outputs: " + outputs.keySet());
        }
        return a;
    }

    /**
     * Writes every hook and output as {@code <name>.npy} into {@code dir} as one set (see {@link OutputFolder}:
     * all files or none, names made safe, {@code index.json} mapping files to names).
     */
    public List<Path> save(Path dir) throws IOException {
        try (OutputFolder out = OutputFolder.prepare(dir, "cache")) {
            save(out);
            return out.commit();
        }
    }

    /** Adds every hook and output to an output set. */
    public void save(OutputFolder out) throws IOException {
        for (var e : hooks.entrySet()) {
            out.npy(e.getKey(), "hook", e.getValue());
        }
        for (var e : outputs.entrySet()) {
            out.npy(e.getKey(), "output", e.getValue());
        }
    }
}
