package dev.jreft.interventions.config;

import dev.jreft.hooks.io.Check;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionResult;
import dev.jreft.interventions.InterventionSite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A JSON intervention run: {@code model} ("minilm" or an .onnx path, with an optional {@code tokenizer}),
 * {@code inputs}, {@code sites} and the hooks to read back ({@code read_hooks}).
 */
public record InterventionConfig(String model, String tokenizer, InputSpec inputs, List<SiteSpec> sites,
                                 List<String> readHooks) {
    public InterventionConfig {
        Check.present("inputs", inputs, "the batch: {\"texts\": [...]}, {\"input_ids\": [[...]]} or {\"npy\": {...}}");
        if (sites == null || sites.isEmpty()) {
            throw ConfigException.of("sites", "found " + (sites == null ? "nothing" : "an empty list") + "; valid: a"
                    + " list of one or more sites");
        }
    }

    /** The embedded default model's name in configs and on the command line. */
    public static final String DEFAULT_MODEL = "minilm";

    public static InterventionConfig read(Path file) {
        return ConfigJson.read(file, InterventionConfig.class);
    }

    /** Every name {@code model} may take before a path: the embedded models. */
    public static final String EMBEDDED_NAMES = "minilm (the embedded all-MiniLM-L6-v2), minilm-q (its int8 export)";

    /**
     * Loads the model a config or {@code --model} names: {@code minilm} (the default, embedded), {@code minilm-q}
     * (the same model quantised to int8, embedded), or the path of an .onnx file with an optional tokenizer.json.
     * Anything else is an error saying which names are valid.
     */
    public static HookedModel loadModel(String model, String tokenizer, Path baseDir) {
        if (model == null || HookedModel.isEmbedded(model)) {
            if (tokenizer != null) {
                throw new ConfigException("tokenizer", tokenizer, "nothing for the embedded "
                        + (model == null ? DEFAULT_MODEL : model) + " (it carries its own tokenizer)");
            }
            return HookedModel.embedded(model == null ? DEFAULT_MODEL : model);
        }
        Path onnx = baseDir.resolve(model);
        if (!Files.isRegularFile(onnx)) {
            throw new ConfigException("model", model, EMBEDDED_NAMES + " or the path of"
                    + " an .onnx file" + (Files.isDirectory(onnx) ? " (this is a folder)" : Files.exists(onnx)
                    ? " (this is a pipe, device or socket)" : " (no file " + onnx.toAbsolutePath() + ")"));
        }
        if (tokenizer == null) {
            return HookedModel.load(onnx);
        }
        Path tok = baseDir.resolve(tokenizer);
        if (!Files.isRegularFile(tok)) {
            throw new ConfigException("tokenizer", tokenizer, "the path of a Hugging Face tokenizer.json ("
                    + (Files.isDirectory(tok) ? "this is a folder" : Files.exists(tok) ? "this is a pipe, device or"
                    + " socket" : "no file " + tok.toAbsolutePath()) + ")");
        }
        return HookedModel.load(onnx, tok);
    }

    /**
     * Runs the config and writes outputs, read hooks and collected values as .npy files into {@code out}, as one set
     * ({@link OutputFolder}: checked and locked before the model runs, all files or none, names made safe).
     */
    public List<Path> runAndWrite(Path baseDir, Path out) throws IOException {
        try (OutputFolder folder = OutputFolder.prepare(out, "intervene")) {
            HookedModel m = loadModel(model, tokenizer, baseDir);
            Batch base;
            try {
                base = inputs.toBatch(m, baseDir);
            } catch (IllegalArgumentException e) {
                throw ConfigException.within("inputs", e);
            }
            List<InterventionSite> built = new ArrayList<>();
            for (int i = 0; i < sites.size(); i++) {
                try {
                    built.add(sites.get(i).toSite(m, base, baseDir));
                } catch (IllegalArgumentException e) {
                    throw ConfigException.within("sites[" + i + "]", e);
                }
            }
            List<String> read = readHooks == null ? List.of() : readHooks;
            for (int i = 0; i < read.size(); i++) {
                try {
                    m.hook(read.get(i));
                } catch (IllegalArgumentException e) {
                    throw ConfigException.within("read_hooks[" + i + "]", e);
                }
            }
            InterventionResult r = new IntervenableModel(m).run(base, built, read);
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
