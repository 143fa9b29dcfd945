package dev.jreft.training;

import dev.jreft.interventions.params.Constraint;
import dev.jreft.interventions.params.Parameter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.checkpoints.Checkpoint;
import dev.jreft.checkpoints.CheckpointFormatException;
import dev.jreft.checkpoints.CheckpointWriter;
import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.runtime.HookedModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A trained {@link ReftClassifier} on disk: the checkpoint format's {@code config.json} gains the intervention
 * config under {@code "reft"} (types by their stable names), the model under {@code "model"}, the training arguments
 * and metrics; parameters go to {@code tensors.safetensors} by name. Loading refuses a model whose fingerprint
 * differs from the one trained on, and a checkpoint whose tensors contradict its config: a missing, extra,
 * mis-shaped or non-float32 tensor, a NaN or an infinity, an R that has lost the orthonormal rows its type keeps.
 */
public final class ReftCheckpoint {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How far R Rᵀ may be from I in a loaded checkpoint (training keeps it within ~1e-6). */

    private ReftCheckpoint() {
    }

    public static void save(Path dir, ReftClassifier classifier, String modelName, TrainingArguments args,
                            Map<String, Object> metrics) throws IOException {
        try (CheckpointWriter w = Checkpoint.prepare(dir)) {
            save(w, classifier, modelName, args, metrics);
        }
    }

    /** Saves through a writer prepared (checked and locked) before the training. */
    public static void save(CheckpointWriter writer, ReftClassifier classifier, String modelName,
                            TrainingArguments args, Map<String, Object> metrics) throws IOException {
        ObjectNode config = JSON.createObjectNode();
        var c = classifier.config();
        var model = classifier.model().hooks().config();
        ObjectNode m = config.putObject("model");
        m.put("name", modelName);
        m.put("family", model.family());
        m.put("layers", model.layers());
        m.put("hidden", model.hidden());
        List<String> parameters = new ArrayList<>(classifier.parameters().keySet());
        if (c.method() instanceof MethodSpec.Reft r) { // the format of the first checkpoints, unchanged
            ObjectNode reft = config.putObject("reft");
            reft.put("intervention", r.intervention());
            reft.set("hooks", JSON.valueToTree(r.hooks()));
            reft.put("rank", r.rank());
            reft.put("positions", r.positions());
            reft.put("share_weights", r.shareWeights());
            reft.put("classes", c.classes());
            reft.put("pooling", c.pooling().name().toLowerCase());
            reft.put("activation", r.activation());
            reft.put("dropout", r.dropout());
            reft.set("parameters", JSON.valueToTree(parameters));
        } else { // the method by name, its settings as the config wrote them, the head
            config.put("method", c.method().type());
            ObjectNode section = ConfigJson.MAPPER.valueToTree(TrainConfig.written(c.method()));
            // a field left to its default is left out, as a user writes it (the reader refuses explicit nulls)
            List<String> unset = new ArrayList<>();
            section.fields().forEachRemaining(f -> {
                if (f.getValue().isNull()) {
                    unset.add(f.getKey());
                }
            });
            section.remove(unset);
            section.set("parameters", JSON.valueToTree(parameters));
            config.set(c.method().section(), section);
            ObjectNode head = config.putObject("head");
            head.put("classes", c.classes());
            head.put("pooling", c.pooling().name().toLowerCase());
        }
        if (args != null) {
            config.set("training", JSON.valueToTree(args));
        }
        if (metrics != null) {
            config.set("metrics", JSON.valueToTree(metrics));
        }
        writer.save(config, classifier.parameters(), classifier.model().fingerprint());
    }

    /** Loads a checkpoint for {@code model} (its fingerprint must match; tensors are checked against the config). */
    public static ReftClassifier load(Path dir, HookedModel model) {
        Checkpoint ck = Checkpoint.load(dir, model.fingerprint());
        ObjectNode config = ck.config();
        String source = dir.resolve(Checkpoint.CONFIG_FILE).toString();
        for (var it = config.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!TOP_LEVEL.contains(key)) {
                throw new CheckpointFormatException(source + ": found unknown field '" + key + "'; valid: fields "
                        + String.join(", ", TOP_LEVEL) + " (a ReFT classifier checkpoint)");
            }
        }
        checkModel(config.get("model"), model, source);
        ReftClassifier.Config c;
        JsonNode listed;
        String section;
        try {
            if (config.has("method")) {
                String type = config.get("method").asText();
                section = TrainConfig.sectionOf(type);
                JsonNode given = config.get(section);
                listed = given != null && given.isObject() ? given.get("parameters") : null;
                c = TrainConfig.methodConfig(type, given, config.get("head"), source, model);
            } else {
                JsonNode r = config.get("reft");
                if (r == null || !r.isObject()) {
                    throw new CheckpointFormatException(source + " has neither \"method\" nor a \"reft\" section:"
                            + " not a classifier checkpoint");
                }
                ObjectNode spec = ((ObjectNode) r).deepCopy();
                listed = spec.remove("parameters");
                section = "reft";
                c = ConfigJson.convert(spec, TrainConfig.ReftSpec.class, source, "reft").toConfig();
            }
            TrainConfig.checkAgainstModel(model, c, TrainingArguments.defaults());
        } catch (IllegalArgumentException e) {
            throw e instanceof CheckpointFormatException f ? f : new CheckpointFormatException(e.getMessage(), e);
        }
        Map<String, INDArray> tensors = ck.tensors();
        Map<String, long[]> expected = new LinkedHashMap<>();
        ReftClassifier fresh = ReftClassifier.create(model, c, 0);
        fresh.parameters().forEach((k, v) -> expected.put(k, v.shape()));
        String where = dir.resolve(Checkpoint.TENSORS_FILE).getFileName().toString();
        checkTensors(dir, tensors, expected, fresh.declarations(), c);
        if (listed != null) {
            List<String> names = new ArrayList<>();
            listed.forEach(n -> names.add(n.asText()));
            if (!new TreeSet<>(names).equals(new TreeSet<>(expected.keySet()))) {
                throw new CheckpointFormatException(source + ": " + section + ".parameters: found " + names
                        + "; valid: " + expected.keySet() + " (what " + describe(c) + " trains; " + where
                        + " holds them)");
            }
        }
        return ReftClassifier.withParameters(model, c, tensors);
    }

    /** Each expected tensor present, float32, of its shape and finite; none unexpected; R orthonormal where kept so. */
    private static void checkTensors(Path dir, Map<String, INDArray> tensors, Map<String, long[]> expected,
                                     Map<String, Parameter> declared, ReftClassifier.Config c) {
        String file = dir.resolve(Checkpoint.TENSORS_FILE).toString();
        String config = describe(c);
        for (String name : tensors.keySet()) {
            if (!expected.containsKey(name)) {
                throw new CheckpointFormatException(file + ": tensor '" + name + "': found a tensor the config does not"
                        + " train; valid: " + expected.keySet() + " (" + config + ")");
            }
        }
        for (var e : expected.entrySet()) {
            INDArray t = tensors.get(e.getKey());
            String at = file + ": tensor '" + e.getKey() + "': ";
            if (t == null) {
                throw new CheckpointFormatException(at + "found nothing; valid: a tensor of shape "
                        + Arrays.toString(e.getValue()) + " (" + config + ")");
            }
            if (t.dataType() != DataType.FLOAT) {
                throw new CheckpointFormatException(at + "found dtype " + SafeTensors.dtypeName(t.dataType())
                        + "; valid: F32 (the method's parameters are float32)");
            }
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new CheckpointFormatException(at + "found shape " + Arrays.toString(t.shape()) + "; valid: "
                        + Arrays.toString(e.getValue()) + " (" + config + ")");
            }
            float[] v = t.dup().data().asFloat();
            for (int i = 0; i < v.length; i++) {
                if (!Float.isFinite(v[i])) {
                    throw new CheckpointFormatException(at + "found " + v[i] + " at element " + i + "; valid: finite"
                            + " values");
                }
            }
            Constraint kept = declared.containsKey(e.getKey()) ? declared.get(e.getKey()).constraint()
                    : Constraint.NONE;
            try {
                kept.check("tensor '" + e.getKey() + "'", t);
            } catch (IllegalArgumentException bad) {
                throw new CheckpointFormatException(file + ": " + bad.getMessage() + ", as " + c.intervention()
                        + " keeps them");
            }
        }
    }

    /** The top-level fields of a classifier checkpoint's config.json. */
    static final List<String> TOP_LEVEL = List.of("format", "schema_version", "model_fingerprint", "tensors", "model",
            "method", "reft", "lora", "adapter", "ia3", "prompt", "weights", "head", "training", "metrics");

    /** The method's settings in a message: what the tensors must agree with. */
    static String describe(ReftClassifier.Config c) {
        if (c.method() instanceof MethodSpec.Reft r) {
            return "reft.intervention '" + r.intervention() + "', share_weights " + r.shareWeights() + ", "
                    + r.hooks().size() + " hooks, rank " + r.rank();
        }
        try {
            return "method " + c.method().type() + " with " + c.method().section() + " "
                    + ConfigJson.MAPPER.writeValueAsString(TrainConfig.written(c.method()));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            return "method " + c.method().type();
        }
    }

    /** The {@code model} section describes the model it is loaded with (the fingerprint already matched). */
    private static void checkModel(JsonNode section, HookedModel model, String source) {
        if (section == null) {
            return;
        }
        var c = model.hooks().config();
        Map<String, Object> actual = new LinkedHashMap<>();
        actual.put("family", c.family());
        actual.put("layers", c.layers());
        actual.put("hidden", c.hidden());
        for (var e : actual.entrySet()) {
            JsonNode v = section.get(e.getKey());
            if (v != null && !v.asText().equals(String.valueOf(e.getValue()))) {
                throw new CheckpointFormatException(source + ": model." + e.getKey() + ": found " + v + "; valid: "
                        + e.getValue() + " (the model it was trained on, whose fingerprint the checkpoint holds)");
            }
        }
    }

    /** The training arguments stored with a checkpoint, if any. */
    public static TrainingArguments trainingArguments(Path dir) {
        JsonNode t = Checkpoint.load(dir, null).config().get("training");
        try {
            return t == null ? null : ConfigJson.convert(t, TrainingArguments.class,
                    dir.resolve(Checkpoint.CONFIG_FILE).toString(), "training");
        } catch (ConfigException e) {
            throw new CheckpointFormatException(e.getMessage(), e);
        }
    }

    /** The stored training arguments, their max length checked against the model it is loaded with. */
    public static TrainingArguments trainingArguments(Path dir, HookedModel model) {
        TrainingArguments args = trainingArguments(dir);
        try {
            if (args != null) {
                model.inputLimits().maxPositions().ifPresent(max -> {
                    if (args.maxLength() > max) {
                        throw new ConfigException("training.max_length", args.maxLength(), "an integer in 2.." + max
                                + " (the model's position limit)").in(dir.resolve(Checkpoint.CONFIG_FILE).toString());
                    }
                });
            }
            return args;
        } catch (ConfigException e) {
            throw new CheckpointFormatException(e.getMessage(), e);
        }
    }
}
