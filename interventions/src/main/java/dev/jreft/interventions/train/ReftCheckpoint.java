package dev.jreft.interventions.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.checkpoints.Checkpoint;
import dev.jreft.checkpoints.CheckpointFormatException;
import dev.jreft.hooks.runtime.HookedModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A trained {@link ReftClassifier} on disk: the checkpoint format's {@code config.json} gains the intervention
 * config under {@code "reft"} (types by their stable names), the model under {@code "model"}, the training arguments
 * and metrics; parameters go to {@code tensors.safetensors} by name. Loading refuses a model whose fingerprint
 * differs from the one trained on.
 */
public final class ReftCheckpoint {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ReftCheckpoint() {
    }

    public static void save(Path dir, ReftClassifier classifier, String modelName, TrainingArguments args,
                            Map<String, Object> metrics) throws IOException {
        ObjectNode config = JSON.createObjectNode();
        var c = classifier.config();
        var model = classifier.model().hooks().config();
        ObjectNode m = config.putObject("model");
        m.put("name", modelName);
        m.put("family", model.family());
        m.put("layers", model.layers());
        m.put("hidden", model.hidden());
        ObjectNode reft = config.putObject("reft");
        reft.put("intervention", c.intervention());
        reft.set("hooks", JSON.valueToTree(c.hooks()));
        reft.put("rank", c.rank());
        reft.put("positions", c.positions());
        reft.put("share_weights", c.shareWeights());
        reft.put("classes", c.classes());
        reft.put("pooling", c.pooling().name().toLowerCase());
        reft.put("activation", c.activation());
        reft.put("dropout", c.dropout());
        reft.set("parameters", JSON.valueToTree(new ArrayList<>(classifier.parameters().keySet())));
        if (args != null) {
            config.set("training", JSON.valueToTree(args));
        }
        if (metrics != null) {
            config.set("metrics", JSON.valueToTree(metrics));
        }
        Checkpoint.save(dir, config, classifier.parameters(), classifier.model().fingerprint());
    }

    /** Loads a checkpoint for {@code model} (its fingerprint must match). */
    public static ReftClassifier load(Path dir, HookedModel model) {
        Checkpoint ck = Checkpoint.load(dir, model.fingerprint());
        ObjectNode config = ck.config();
        if (!config.has("reft")) {
            throw new CheckpointFormatException(dir + "/config.json has no \"reft\" section: not a ReFT classifier"
                    + " checkpoint");
        }
        var r = config.get("reft");
        List<String> hooks = new ArrayList<>();
        r.get("hooks").forEach(h -> hooks.add(h.asText()));
        ReftClassifier.Config c = new ReftClassifier.Config(r.get("intervention").asText(), hooks,
                r.get("rank").asInt(), r.get("positions").asText(), r.get("share_weights").asBoolean(),
                r.get("classes").asInt(), ClassificationHead.Pooling.valueOf(r.get("pooling").asText().toUpperCase()),
                r.has("activation") ? r.get("activation").asText() : "linear",
                r.has("dropout") ? r.get("dropout").asDouble() : 0);
        return ReftClassifier.withParameters(model, c, ck.tensors());
    }

    /** The training arguments stored with a checkpoint, if any. */
    public static TrainingArguments trainingArguments(Path dir) {
        var t = Checkpoint.load(dir, null).config().get("training");
        try {
            return t == null ? null : JSON.treeToValue(t, TrainingArguments.class);
        } catch (IOException e) {
            throw new CheckpointFormatException("unreadable training arguments in " + dir + ": " + e.getMessage(), e);
        }
    }
}
