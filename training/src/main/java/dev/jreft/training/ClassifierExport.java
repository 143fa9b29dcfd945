package dev.jreft.training;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jreft.checkpoints.SafeTensors;
import dev.jreft.hooks.discovery.LinearModule;
import dev.jreft.hooks.discovery.ModuleMap;
import dev.jreft.hooks.graph.Attr;
import dev.jreft.hooks.graph.ElemTypes;
import dev.jreft.hooks.graph.OnnxGraph;
import dev.jreft.hooks.graph.SubgraphBuilder;
import dev.jreft.hooks.io.ConfigException;
import dev.jreft.hooks.io.ConfigJson;
import dev.jreft.hooks.io.OutputFolder;
import dev.jreft.hooks.runtime.Batch;
import dev.jreft.hooks.runtime.HookedModel;
import dev.jreft.interventions.IntervenableModel;
import dev.jreft.interventions.InterventionSite;
import dev.jreft.interventions.MergedWeights;
import dev.jreft.interventions.ModuleSite;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A trained classifier out of jreft: merged into the model's weights as one standalone ONNX graph (peft's
 * {@code merge_and_unload}, plus the head), or as a peft adapter folder that loads onto the original Hugging Face
 * model.
 */
public final class ClassifierExport {
    /** The merged graph's class scores [b, C], beside the model's own outputs. */
    public static final String LOGITS = "logits";

    private ClassifierExport() {
    }

    /**
     * The model's graph with the method baked into its weights (LoRA, DoRA at their modules; IA3 into the module
     * whose output or input its hook is; BitFit's and full finetuning's weights as trained) and the head appended, so it runs at the plain model's speed. Methods that
     * act on activations at positions (ReFT, adapters) have no weight form and are refused.
     */
    public static OnnxGraph merged(ReftClassifier c) {
        HookedModel model = c.model();
        ModuleMap modules = model.modules();
        OnnxGraph g = model.graph().copy();
        String type = c.config().method().type();
        // BitFit / full finetuning: the trained weights are the model's, written back into their initializers
        c.weightsForExport().forEach((name, v) -> g.setFloats(name, v.dup('c').data().asFloat()));
        for (ModuleSite e : c.editsForExport()) {
            LinearModule m = modules.get(e.module()).orElseThrow();
            Optional<MergedWeights> merged = e.edit().merge(m, modules.weight(m), modules.bias(m), e.params());
            write(g, m, merged.orElseThrow(() -> cannotMerge(type, "its edit of " + m.path())));
        }
        for (InterventionSite s : c.sitesForExport()) {
            String tensor = model.hook(s.hook()).tensor();
            LinearModule byOutput = null;
            LinearModule byInput = null;
            for (LinearModule m : modules.all()) {
                if (m.output().equals(tensor)) {
                    byOutput = m;
                } else if (m.input().equals(tensor) && g.consumers(tensor).size() == 1) {
                    byInput = m; // the module is the hook's only reader: scaling its input is scaling its weight
                }
            }
            LinearModule m = byOutput != null ? byOutput : byInput;
            if (m == null) {
                throw cannotMerge(type, "its " + s.intervention().type() + " at " + s.hook() + ", which acts on"
                        + " activations no single linear module's weight produces or reads");
            }
            Optional<MergedWeights> merged = s.intervention().mergeInto(m == byOutput, modules.weight(m),
                    modules.bias(m), s.params());
            write(g, m, merged.orElseThrow(() -> cannotMerge(type, "its " + s.intervention().type() + " at "
                    + s.hook() + ", which acts on activations at positions")));
        }
        ClassificationHead.appendLogits(g, model.graph().outputNames().get(0),
                c.parameters().get(ClassificationHead.W), c.parameters().get(ClassificationHead.B),
                c.config().pooling(), LOGITS);
        g.setDocString("jreft: " + type + " merged into the weights of " + model.graph().origin()
                + ", with its classification head (output '" + LOGITS + "')");
        return g;
    }

    /**
     * Any trained classifier as one standalone ONNX graph: the intervened graph jreft runs, with the parameters
     * frozen into initializers, each site's positions computed from {@code attention_mask} (first n and last m real
     * tokens, or every position) instead of fed, and the head appended. For methods that act on activations (ReFT,
     * adapters) this is the export; LoRA-family methods are better {@link #merged}.
     */
    public static OnnxGraph standalone(ReftClassifier c) {
        IntervenableModel.ExportGraph e = c.exportGraph();
        OnnxGraph g = e.graph();
        List<String> modelInputs = c.model().graph().inputNames();
        List<PositionSpec> rules = c.exportPositions();
        for (var f : e.feeds().entrySet()) {
            String name = f.getKey();
            if (modelInputs.contains(name) || e.positionMasks().contains(name)) {
                continue;
            }
            INDArray v = f.getValue();
            if (v.dataType() == org.nd4j.linalg.api.buffer.DataType.BOOL) {
                boolean[] b = new boolean[(int) v.length()];
                for (int i = 0; i < b.length; i++) {
                    b[i] = v.getDouble(i) != 0;
                }
                g.freezeBoolInput(name, b, v.shape());
            } else {
                g.freezeInput(name, v.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).dup('c').data().asFloat(),
                        v.shape());
            }
        }
        for (int i = 0; i < e.positionMasks().size(); i++) {
            PositionSpec rule = rules.get(i);
            g.defineInput(e.positionMasks().get(i), "jreft.positions" + i, b -> positionMask(b, rule));
        }
        ClassificationHead.appendLogits(g, c.model().graph().outputNames().get(0),
                c.parameters().get(ClassificationHead.W), c.parameters().get(ClassificationHead.B),
                c.config().pooling(), LOGITS);
        g.setDocString("jreft: " + c.config().method().type() + " spliced into " + c.model().graph().origin()
                + " with its parameters frozen, and its classification head (output '" + LOGITS + "')");
        return g;
    }

    /**
     * [b, s, 1] true at the positions {@code rule} selects in each row of {@code attention_mask} (right padding):
     * the first n and the last m real tokens, or every position when the rule is null.
     */
    private static String positionMask(SubgraphBuilder b, PositionSpec rule) {
        String mask = b.op("Cast", List.of(Batch.ATTENTION_MASK), Attr.i("to", ElemTypes.FLOAT));
        String selected;
        if (rule == null) {
            selected = b.op("Equal", List.of(mask, mask)); // every position, padded ones included
        } else {
            String ones = b.op("Add", List.of(b.op("Mul", List.of(mask, b.scalar(0, ElemTypes.FLOAT))),
                    b.scalar(1, ElemTypes.FLOAT)));
            String pos = b.op("Sub", List.of(b.op("CumSum", List.of(ones, b.constantInts(new long[] {1}))),
                    b.scalar(1, ElemTypes.FLOAT)));
            String length = b.reduceSum(mask, new long[] {1}, true);
            String real = b.op("Less", List.of(pos, length));
            String first = b.op("Less", List.of(pos, b.scalar(rule.first(), ElemTypes.FLOAT)));
            String fromLast = b.op("Not", List.of(b.op("Less", List.of(pos, b.op("Sub", List.of(length,
                    b.scalar(rule.last(), ElemTypes.FLOAT)))))));
            selected = b.op("And", List.of(real, b.op("Or", List.of(first, fromLast))));
        }
        return b.op("Reshape", List.of(selected, b.constantInts(new long[] {0, 0, 1}, 3)));
    }

    /** max |logits of {@code merged} − the classifier's own| on {@code texts}: the merge's check before it is kept. */
    public static double parity(ReftClassifier c, OnnxGraph merged, List<String> texts) {
        HookedModel plain = new HookedModel(merged, c.model().tokenizer().orElseThrow(), c.model().runtime());
        var batch = c.encode(texts, 64);
        return plain.run(batch).get(LOGITS).sub(c.logits(batch)).amaxNumber().doubleValue();
    }

    private static ConfigException cannotMerge(String type, String why) {
        return new ConfigException("--checkpoint", ConfigException.described(article(type) + " " + type
                + " checkpoint (" + why + ")"), "a LoRA, DoRA, IA3, BitFit or full checkpoint: only they have a weight"
                + " form (a ReFT intervention or an adapter acts on activations: jreft export --format onnx writes it"
                + " as a standalone graph)");
    }

    /** "a" or "an" before a method's name. */
    static String article(String word) {
        return "aeiou".indexOf(Character.toLowerCase(word.charAt(0))) >= 0 ? "an" : "a";
    }

    /** Writes merged weights back in the initializer's own layout; a weight other nodes share is refused. */
    private static void write(OnnxGraph g, LinearModule m, MergedWeights w) {
        if (m.quantised()) { // rounding the merged weight back to int8 would lose most of a small update
            throw new ConfigException("--checkpoint", ConfigException.described("a checkpoint trained on an int8"
                    + " model (its module " + m.path() + " holds int8 weights)"), "a checkpoint of a float model:"
                    + " jreft export --format onnx writes this one as a standalone graph on its int8 base");
        }
        if (g.consumers(m.weight()).size() != 1) {
            throw new IllegalArgumentException("module " + m.path() + ": its weight " + m.weight() + " is shared by "
                    + g.consumers(m.weight()).size() + " nodes (tied); merging into it would change them all");
        }
        INDArray stored = m.layout() == LinearModule.Layout.OUT_IN ? w.weight() : w.weight().transpose();
        g.setFloats(m.weight(), stored.dup('c').data().asFloat());
        if (m.hasBias() && w.bias() != null) {
            if (g.consumers(m.bias()).size() != 1) {
                throw new IllegalArgumentException("module " + m.path() + ": its bias is shared by other nodes");
            }
            g.setFloats(m.bias(), w.bias().dup('c').data().asFloat());
        }
    }

    /**
     * Hugging Face names of the models jreft embeds, for peft's {@code base_model_name_or_path}, by the name a
     * checkpoint records ({@code minilm}, {@code minilm-q}; the demo's checkpoints before it took that name said
     * {@code all-minilm-l6-v2}).
     */
    private static final Map<String, String> HF_NAMES = Map.of("minilm", "sentence-transformers/all-MiniLM-L6-v2",
            "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2",
            "minilm-q", "sentence-transformers/all-MiniLM-L6-v2"); // an int8 base's adapter loads onto the fp32 model

    /**
     * A peft adapter folder for a LoRA / DoRA classifier: {@code adapter_config.json} and
     * {@code adapter_model.safetensors} with peft's key names ({@code base_model.model.<module>.lora_A.weight},
     * {@code lora_B.weight}, DoRA's {@code lora_magnitude_vector.weight}), which {@code PeftModel.from_pretrained}
     * loads onto the original model. The classification head is jreft's own and is written as {@code head.safetensors}
     * beside them (peft has no place for it on a base model without a head).
     */
    public static List<Path> peft(ReftClassifier c, String modelName, Path dir) throws IOException {
        if (!(c.config().method() instanceof MethodSpec.Lora lora)) {
            throw new ConfigException("--checkpoint", ConfigException.described(article(c.config().method().type())
                    + " " + c.config().method().type() + " checkpoint"), "a LoRA or DoRA checkpoint for --format peft (peft's format here is LoRA's)");
        }
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        boolean conv1d = false;
        List<String> targets = new java.util.ArrayList<>();
        for (ModuleSite e : c.editsForExport()) {
            LinearModule m = c.model().modules().get(e.module()).orElseThrow();
            String key = "base_model.model." + m.path();
            tensors.put(key + ".lora_A.weight", e.params().get("A"));
            tensors.put(key + ".lora_B.weight", e.params().get("B"));
            if (e.params().containsKey("m")) {
                tensors.put(key + ".lora_magnitude_vector.weight", e.params().get("m"));
            }
            conv1d |= m.op().equals("Gemm") && m.layout() == LinearModule.Layout.IN_OUT; // GPT-2's Conv1D
            targets.add(m.path());
        }
        ObjectNode config = ConfigJson.MAPPER.createObjectNode();
        config.put("peft_type", "LORA");
        config.put("base_model_name_or_path", HF_NAMES.get(modelName));
        config.put("r", lora.r());
        config.put("lora_alpha", lora.loraAlpha());
        config.put("lora_dropout", lora.loraDropout());
        config.put("use_rslora", lora.useRslora());
        config.put("use_dora", lora.type().equals("dora"));
        config.put("bias", "none");
        config.put("fan_in_fan_out", conv1d);
        config.set("target_modules", ConfigJson.MAPPER.valueToTree(targets));
        config.put("inference_mode", true);
        config.putNull("task_type");
        try (OutputFolder out = OutputFolder.prepare(dir, "export --format peft", "--out")) {
            Path staging = out.staging();
            Files.writeString(staging.resolve("adapter_config.json"), ConfigJson.MAPPER
                    .writerWithDefaultPrettyPrinter().writeValueAsString(config) + "\n", StandardCharsets.UTF_8);
            SafeTensors.write(staging.resolve("adapter_model.safetensors"), tensors, Map.of("format", "pt"));
            Map<String, INDArray> head = new LinkedHashMap<>();
            head.put(ClassificationHead.W, c.parameters().get(ClassificationHead.W));
            head.put(ClassificationHead.B, c.parameters().get(ClassificationHead.B));
            SafeTensors.write(staging.resolve("head.safetensors"), head, Map.of("pooling",
                    c.config().pooling().name().toLowerCase(java.util.Locale.ROOT)));
            return out.commit();
        }
    }
}
