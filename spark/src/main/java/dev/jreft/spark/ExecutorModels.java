package dev.jreft.spark;

import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.runtime.HookedModel;
import org.apache.spark.SparkFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One loaded model per JVM and model description: every task an executor runs (and, in local mode, the driver)
 * shares its ORT session, which is thread-safe, instead of loading the weights per partition.
 */
final class ExecutorModels {
    private static final Map<String, HookedModel> MODELS = new ConcurrentHashMap<>();

    private ExecutorModels() {
    }

    static HookedModel get(ActivationDatasets.Spec spec) {
        return get(spec.model(), spec.tokenizer());
    }

    /** {@code model}: {@code minilm} (embedded) or an .onnx file; {@code tokenizer}: its tokenizer.json or null. */
    static HookedModel get(String model, String tokenizer) {
        return MODELS.computeIfAbsent(model + "|" + tokenizer, k -> load(model, tokenizer));
    }

    /**
     * A model or tokenizer file as the driver hands it to tasks: absolute (tasks on this machine find it there,
     * others in spark-submit's {@code --files} by its name); the embedded model and null as they are.
     */
    static String forTasks(String file) {
        return file == null || HookedModel.isEmbedded(file) ? file : Path.of(file).toAbsolutePath()
                .toString();
    }

    private static HookedModel load(String model, String tokenizer) {
        if (HookedModel.isEmbedded(model)) {
            return HookedModel.embedded(model);
        }
        Path onnx = local(model, "model");
        return tokenizer == null ? HookedModel.load(onnx) : HookedModel.load(onnx, local(tokenizer, "tokenizer"));
    }

    /** The file as given, else as {@code spark-submit --files} shipped it to this executor's working files. */
    static Path local(String file, String field) {
        Path given = Path.of(file);
        if (Files.isRegularFile(given)) {
            return given;
        }
        try {
            Path shipped = Path.of(SparkFiles.get(given.getFileName().toString()));
            if (Files.isRegularFile(shipped)) {
                return shipped;
            }
        } catch (RuntimeException e) {
            // no SparkContext in this JVM: only the path as given
        }
        throw new ConfigException(field, file, "a file readable on every executor (a shared path, or shipped with"
                + " spark-submit --files " + given.getFileName() + ")");
    }
}
