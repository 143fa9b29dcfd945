package dev.jreft.hooks.runtime;

import dev.jreft.hooks.io.Npy;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
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

    /** Writes each hook as {@code <dir>/<hook>.npy} (atomically, one file at a time). */
    public void save(Path dir) throws IOException {
        for (var e : hooks.entrySet()) {
            Npy.write(dir.resolve(e.getKey().replace(':', '_').replace('/', '_') + ".npy"), e.getValue());
        }
    }
}
