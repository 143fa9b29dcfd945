package dev.jreft.interventions.config;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionResult;
import dev.jreft.interventions.InterventionSite;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A JSON intervention run: {@code model} ("minilm" or an .onnx path, with an optional {@code tokenizer}),
 * {@code inputs}, {@code sites} and the hooks to read back ({@code read_hooks}).
 */
public record InterventionConfig(String model, String tokenizer, InputSpec inputs, List<SiteSpec> sites,
                                 List<String> read_hooks) {
    public static InterventionConfig read(Path file) {
        try {
            return new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                    .readValue(file.toFile(), InterventionConfig.class);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read intervention config " + file + ": " + e.getMessage(), e);
        }
    }

    /** Loads the model the config names: "minilm" (default), or an .onnx path with an optional tokenizer. */
    public static HookedModel loadModel(String model, String tokenizer, Path baseDir) {
        if (model == null || model.equals("minilm")) {
            return HookedModel.minilm();
        }
        Path onnx = baseDir.resolve(model);
        return tokenizer == null ? HookedModel.load(onnx) : HookedModel.load(onnx, baseDir.resolve(tokenizer));
    }

    /**
     * Runs the config and writes outputs, read hooks and collected values as .npy files into {@code out}, as one set
     * ({@link OutputFolder}: checked and locked before the model runs, all files or none, names made safe).
     */
    public List<Path> runAndWrite(Path baseDir, Path out) throws IOException {
        if (inputs == null || sites == null || sites.isEmpty()) {
            throw new IllegalArgumentException("an intervention config needs 'inputs' and at least one site");
        }
        try (OutputFolder folder = OutputFolder.prepare(out, "intervene")) {
            HookedModel m = loadModel(model, tokenizer, baseDir);
            Batch base = inputs.toBatch(m, baseDir);
            List<InterventionSite> built = new ArrayList<>();
            for (SiteSpec s : sites) {
                built.add(s.toSite(m, base, baseDir));
            }
            InterventionResult r = new IntervenableModel(m).run(base, built,
                    read_hooks == null ? List.of() : read_hooks);
            for (var e : r.outputs().entrySet()) {
                folder.npy(e.getKey(), "output", e.getValue());
            }
            for (var e : r.hooks().entrySet()) {
                folder.npy(e.getKey(), "hook", e.getValue());
            }
            for (int i = 0; i < r.collected().size(); i++) {
                if (r.collected().get(i) != null) {
                    folder.npy("collected.site" + i, "collected", r.collected().get(i));
                }
            }
            return folder.commit();
        }
    }
}
