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
        var c = classifier.config();
        ObjectNode config = header(classifier.model(), modelName);
        Kept kept = kept(c.method(), classifier.parameters(), classifier.model(), config);
        List<String> parameters = new ArrayList<>(kept.parameters().keySet());
        if (c.method() instanceof MethodSpec.Reft r) { // the format of the first checkpoints, unchanged
            ObjectNode reft = reftSection(config, r);
            reft.put("classes", c.classes());
            reft.put("pooling", c.pooling().name().toLowerCase());
            reft.put("activation", r.activation());
            reft.put("dropout", r.dropout());
            reft.set("parameters", JSON.valueToTree(parameters));
        } else {
            methodSection(config, kept.method(), parameters);
            ObjectNode head = config.putObject("head");
            head.put("classes", c.classes());
            head.put("pooling", c.pooling().name().toLowerCase());
        }
        finish(writer, config, kept.parameters(), classifier.model(), args, metrics);
    }

    /**
     * Saves a trained {@link CausalLanguageModel}: {@code "task": "causal_lm"}, the method as a classifier checkpoint
     * writes it, no head.
     */
    public static void save(CheckpointWriter writer, CausalLanguageModel lm, String modelName, TrainingArguments args,
                            Map<String, Object> metrics) throws IOException {
        ObjectNode config = header(lm.model(), modelName);
        config.put("task", CAUSAL_LM);
        Kept kept = kept(lm.config().method(), lm.parameters(), lm.model(), config);
        List<String> parameters = new ArrayList<>(kept.parameters().keySet());
        if (lm.config().method() instanceof MethodSpec.Reft r) {
            ObjectNode reft = reftSection(config, r);
            reft.put("activation", r.activation());
            reft.put("dropout", r.dropout());
            reft.set("parameters", JSON.valueToTree(parameters));
        } else {
            methodSection(config, kept.method(), parameters);
        }
        finish(writer, config, kept.parameters(), lm.model(), args, metrics);
    }

    /** What a checkpoint keeps of a trained method: the method it loads back as and that method's parameters. */
    private record Kept(MethodSpec method, Map<String, INDArray> parameters) {
    }

    /**
     * Prefix tuning with the projection MLP keeps the prefixes the MLP computes, not the MLP (as the paper does and
     * peft saves them): it loads back as plain prefix tuning, and {@code derived} says what it was trained with.
     * Every other method keeps its parameters as they are.
     */
    private static Kept kept(MethodSpec method, Map<String, INDArray> params, HookedModel model, ObjectNode config) {
        if (!(method instanceof MethodSpec.Prompt p) || !(p.edit(model)
                instanceof dev.jreft.interventions.prompt.PrefixTuning prefix) || !prefix.projected()) {
            return new Kept(method, params);
        }
        String head = PromptSites.PREFIX + ".";
        Map<String, INDArray> own = new LinkedHashMap<>();
        Map<String, INDArray> kept = new LinkedHashMap<>();
        params.forEach((k, v) -> {
            if (k.startsWith(head)) {
                own.put(k.substring(head.length()), v);
            } else {
                kept.put(k, v);
            }
        });
        prefix.prefixes(dev.jreft.interventions.SequenceShape.of(model), own).forEach((k, v) -> kept.put(head + k, v));
        ObjectNode derived = config.putObject("derived");
        derived.put("from", "prefix_projection");
        derived.put("encoder_hidden_size", prefix.projectionHidden());
        derived.put("note", "the prefixes the projection MLP computed after training; the MLP is not kept");
        return new Kept(new MethodSpec.Prompt(p.type(), p.numVirtualTokens(), p.promptTuningInit(), null, 0, false),
                kept);
    }

    /** The value of {@code task} in a causal LM checkpoint (a classifier checkpoint has none). */
    static final String CAUSAL_LM = "causal_lm";

    private static ObjectNode header(HookedModel hooked, String modelName) {
        ObjectNode config = JSON.createObjectNode();
        var model = hooked.hooks().config();
        ObjectNode m = config.putObject("model");
        m.put("name", modelName);
        m.put("family", model.family());
        m.put("layers", model.layers());
        m.put("hidden", model.hidden());
        return config;
    }

    private static ObjectNode reftSection(ObjectNode config, MethodSpec.Reft r) {
        ObjectNode reft = config.putObject("reft");
        reft.put("intervention", r.intervention());
        reft.set("hooks", JSON.valueToTree(r.hooks()));
        reft.put("rank", r.rank());
        reft.put("positions", r.positions());
        reft.put("share_weights", r.shareWeights());
        return reft;
    }

    /** The method by name, its settings as the config wrote them. */
    private static void methodSection(ObjectNode config, MethodSpec method, List<String> parameters) {
        config.put("method", method.type());
        ObjectNode section = ConfigJson.MAPPER.valueToTree(TrainConfig.written(method));
        // a field left to its default is left out, as a user writes it (the reader refuses explicit nulls)
        List<String> unset = new ArrayList<>();
        section.fields().forEachRemaining(f -> {
            if (f.getValue().isNull()) {
                unset.add(f.getKey());
            }
        });
        section.remove(unset);
        section.set("parameters", JSON.valueToTree(parameters));
        config.set(method.section(), section);
    }

    private static void finish(CheckpointWriter writer, ObjectNode config, Map<String, INDArray> parameters,
                               HookedModel model, TrainingArguments args, Map<String, Object> metrics)
            throws IOException {
        if (args != null) {
            config.set("training", JSON.valueToTree(args));
        }
        if (metrics != null) {
            config.set("metrics", JSON.valueToTree(metrics));
        }
        writer.save(config, parameters, model.fingerprint());
    }

    /** Loads a checkpoint for {@code model} (its fingerprint must match; tensors are checked against the config). */
    public static ReftClassifier load(Path dir, HookedModel model) {
        Read r = read(dir, model, false);
        ReftClassifier fresh = ReftClassifier.create(model, r.config, 0);
        check(dir, r, shapes(fresh.parameters()), fresh.declarations());
        return ReftClassifier.withParameters(model, r.config, r.tensors);
    }

    /** Loads a causal LM checkpoint ({@link #save(CheckpointWriter, CausalLanguageModel, String, ...)}). */
    public static CausalLanguageModel loadLanguageModel(Path dir, HookedModel model) {
        Read r = read(dir, model, true);
        CausalLanguageModel.Config c = new CausalLanguageModel.Config(r.config.method());
        CausalLanguageModel fresh = CausalLanguageModel.create(model, c, 0);
        check(dir, r, shapes(fresh.parameters()), fresh.declarations());
        return CausalLanguageModel.withParameters(model, c, r.tensors);
    }

    /** A checkpoint's config read for a model: the method (with a head for a classifier) and the tensors. */
    private record Read(ReftClassifier.Config config, Map<String, INDArray> tensors, JsonNode listed, String section,
                        String source) {
    }

    private static Read read(Path dir, HookedModel model, boolean languageModel) {
        Checkpoint ck = Checkpoint.load(dir, model.fingerprint());
        ObjectNode config = ck.config();
        String source = dir.resolve(Checkpoint.CONFIG_FILE).toString();
        String kind = languageModel ? "a causal LM checkpoint" : "a ReFT classifier checkpoint";
        for (var it = config.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!TOP_LEVEL.contains(key) || key.equals("head") && languageModel) {
                throw new CheckpointFormatException(source + ": found unknown field '" + key + "'; valid: fields "
                        + String.join(", ", TOP_LEVEL.stream().filter(f -> !languageModel || !f.equals("head"))
                        .toList()) + " (" + kind + ")");
            }
        }
        String task = config.path("task").asText("");
        if (languageModel != task.equals(CAUSAL_LM)) {
            throw new CheckpointFormatException(source + ": task: found " + (task.isEmpty() ? "none (a classifier)"
                    : "'" + task + "'") + "; valid: " + (languageModel ? "'" + CAUSAL_LM + "' (" + kind + ")"
                    : "none (" + kind + "; '" + CAUSAL_LM + "' checkpoints load as a causal LM)"));
        }
        checkModel(config.get("model"), model, source);
        if (config.has("derived") && !config.get("derived").isObject()) {
            throw new CheckpointFormatException(source + ": derived: found " + config.get("derived") + "; valid: an"
                    + " object saying what the kept parameters were computed from");
        }
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
                            + " not " + kind);
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
        return new Read(c, ck.tensors(), listed, section, source);
    }

    private static Map<String, long[]> shapes(Map<String, INDArray> params) {
        Map<String, long[]> expected = new LinkedHashMap<>();
        params.forEach((k, v) -> expected.put(k, v.shape()));
        return expected;
    }

    /** The tensors against the method's declarations, and the config's parameter list against them. */
    private static void check(Path dir, Read r, Map<String, long[]> expected, Map<String, Parameter> declared) {
        String where = dir.resolve(Checkpoint.TENSORS_FILE).getFileName().toString();
        checkTensors(dir, r.tensors, expected, declared, r.config);
        if (r.listed != null) {
            List<String> names = new ArrayList<>();
            r.listed.forEach(n -> names.add(n.asText()));
            if (!new TreeSet<>(names).equals(new TreeSet<>(expected.keySet()))) {
                throw new CheckpointFormatException(r.source + ": " + r.section + ".parameters: found " + names
                        + "; valid: " + expected.keySet() + " (what " + describe(r.config) + " trains; " + where
                        + " holds them)");
            }
        }
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
            "task", "method", "reft", "lora", "adapter", "ia3", "prompt", "weights", "head", "derived", "training",
            "metrics");

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
